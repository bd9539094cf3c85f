"""`stream-manager template preview` in a real browser (Chromium): the template authors'
page shows the picture, the params form generated from the template's schema, frame
controls and costs, and follows the file as it is rebuilt."""
import os

from playwright.sync_api import expect

from harness import GUESTS, close, poll, shot, tid

GREEN, RED, BLUE = (0, 255, 0), (255, 0, 0), (0, 0, 255)

# The colour at the centre of the shown picture (an <img> of a same-origin blob).
CENTRE = """(img) => {
  if (!img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3));
}"""


def guest(name):
    path = os.path.join(GUESTS, f"{name}.wasm")
    assert os.path.exists(path), f"{path} is missing: (cd tests/guests && cargo build --release --target wasm32-wasip2)"
    return path


def colour_is(page, want):
    def probe():
        c = tid(page, "preview-image").evaluate(CENTRE)
        return c is not None and close(tuple(c), want, 10)
    return probe


def no_errors(page, allow=()):
    errors = [e for e in page.errors if not any(a in e for a in allow)]
    assert not errors, "the page reported errors:\n  " + "\n  ".join(errors)


def test_template_preview_shows_the_picture_and_the_form_and_updates_params(page, previews):
    preview = previews(guest("hostile"))
    page.goto(preview.url("/"))
    expect(tid(page, "template-name")).to_contain_text("hostile")
    image = tid(page, "preview-image")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("data-frame", "0")
    form = tid(page, "params-form")
    expect(form).to_be_visible()
    expect(form.locator('[data-field="/mode"] input')).to_have_value("ok")
    expect(tid(page, "cost-guest")).to_contain_text("ms")
    expect(tid(page, "cost-budget")).to_contain_text("ms")
    poll(colour_is(page, GREEN), 5, "the default (green) picture")

    # An edited param and Update: the picture is drawn again with it.
    colour = form.locator('[data-field="/color"]')
    colour.locator("input").fill("#ff0000")
    tid(page, "template-update").click()
    expect(tid(page, "form-status")).to_contain_text("Updated")
    poll(colour_is(page, RED), 5, "a red picture after Update")

    # Frame controls: a step, then playing at the preview's fps, then pausing.
    tid(page, "next-frame").click()
    expect(image).to_have_attribute("data-frame", "1")
    expect(tid(page, "time")).to_have_text("0.033 s")
    tid(page, "play").click()
    expect(tid(page, "play")).to_have_attribute("aria-pressed", "true")
    poll(lambda: int(image.get_attribute("data-frame")) >= 10, 10, "playing on to frame 10")
    tid(page, "play").click()
    expect(tid(page, "play")).to_have_attribute("aria-pressed", "false")
    poll(colour_is(page, RED), 5, "still red while playing")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "template-preview")

    # Params the template itself refuses: the server's 422, next to the field.
    colour.locator("input").fill("#12")
    with page.expect_response(lambda r: r.url.endswith("/api/render")) as answer:
        tid(page, "template-update").click()
    assert answer.value.status == 422, answer.value.text()
    error = answer.value.json()["error"]
    assert error["code"] == "invalid_params", error
    expect(colour.get_by_test_id("field-error")).to_have_text('color must be "#rrggbb"')
    expect(tid(page, "form-error")).to_have_text(error["message"])
    poll(colour_is(page, RED), 5, "the last picture kept")
    no_errors(page, allow=["status of 422"])


def test_template_preview_follows_the_file_as_it_is_rebuilt(page, previews):
    preview = previews(guest("colour_a"))
    page.goto(preview.url("/"))
    expect(tid(page, "template-version")).to_have_attribute("data-version", "1")
    poll(colour_is(page, RED), 5, "colour-a's red")

    preview.replace(guest("colour_b"))
    expect(tid(page, "template-version")).to_have_attribute("data-version", "2")
    expect(tid(page, "template-name")).to_contain_text("2.0.0")
    poll(colour_is(page, BLUE), 5, "colour-b's blue without reloading the page")

    with open(preview.file, "wb") as f:
        f.write(b"\0asm\x0d\0\x01\0 truncated")
    expect(tid(page, "load-error")).to_contain_text("template.wasm")
    expect(tid(page, "load-error")).to_contain_text("still showing version 2")
    tid(page, "next-frame").click()
    expect(tid(page, "preview-image")).to_have_attribute("data-frame", "1")
    poll(colour_is(page, BLUE), 5, "the last good version still drawn")
    shot(page, "template-preview-load-error")

    preview.replace(guest("colour_a"))
    expect(tid(page, "load-error")).to_have_count(0)
    expect(tid(page, "template-version")).to_have_attribute("data-version", "3")
    poll(colour_is(page, RED), 5, "colour-a again")
    no_errors(page)
