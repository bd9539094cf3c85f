"""The admin console in a real browser (Chromium) against the real binary: what an operator
sees and does, checked against the REST API and the decoded RTMP output."""
import json
import os
import re
import subprocess
import time

from playwright.sync_api import expect

from harness import (GUESTS, TEMPLATES, Player, free_port, new_token, open_console, poll, shot,
                     solid_scene, spawn, tid)

TOKEN_KEY = "stream-manager.token"


def no_errors(page, allow=()):
    errors = [e for e in page.errors if not any(a in e for a in allow)]
    assert not errors, "the page reported errors:\n  " + "\n  ".join(errors)


def test_loads_without_errors_and_signs_in_and_out_with_a_token(page, new_page, servers):
    plain = servers()
    open_console(page, plain)
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "stopped")
    expect(tid(page, "scene-default")).to_be_visible()
    shot(page, "main-stopped")
    no_errors(page)

    token = "br0wser-t0ken/+="  # not URL-safe on purpose: it must survive base64url
    secured = servers(token=token)
    p = new_page()
    p.goto(secured.url("/"))
    expect(tid(p, "signin")).to_be_visible()
    expect(tid(p, "connection")).to_have_attribute("data-state", "signin")
    shot(p, "signin")
    tid(p, "token").fill("wrong")
    tid(p, "signin-submit").click()
    expect(tid(p, "signin-error")).to_contain_text("not accepted")
    tid(p, "token").fill(token)
    tid(p, "signin-submit").click()
    expect(tid(p, "signin")).to_be_hidden()
    expect(tid(p, "connection")).to_have_attribute("data-state", "connected")
    expect(tid(p, "scene-default")).to_be_visible()
    assert p.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == token
    assert token not in p.evaluate("JSON.stringify(localStorage)")
    assert token not in p.url
    leaked = [u for u in p.urls if token in u or "token=" in u]
    assert not leaked, f"the token is in a URL: {leaked}"
    assert any(u.startswith("ws:") for u in p.urls), "the page opened no WebSocket"

    tid(p, "signout").click()
    expect(tid(p, "signin")).to_be_visible()
    assert p.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    expect(tid(p, "scene-default")).to_have_count(0)  # nothing read with the token stays
    no_errors(p, allow=["401"])


def test_preview_updates_once_turned_on(page, servers):
    server = servers()
    server.api("POST", "/api/stream/start")
    open_console(page, server)
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "live")
    tid(page, "preview-enable").click()
    expect(tid(page, "preview-enable")).to_have_count(0)
    assert server.api("GET", "/api/stream/config")["preview"]["enabled"] is True
    preview = tid(page, "preview")
    expect(preview).to_be_visible()
    first = poll(lambda: preview.get_attribute("src"), 10, "a first preview frame")
    assert first.startswith("data:image/jpeg;base64,")
    poll(lambda: preview.get_attribute("src") not in (None, first), 5, "the preview image to change")
    expect(tid(page, "preview-age")).to_have_text(re.compile(r"^\s*\d+ ms\s*$"))
    # A frame arriving several times a second keeps the shown picture young.
    age = poll(lambda: int(tid(page, "preview-age").inner_text().split()[0]) < 1000 and
               tid(page, "preview-age").inner_text(), 5, "a preview younger than 1 s")
    print("preview age", age)
    shot(page, "main-live-preview")
    no_errors(page)


def test_go_live_and_stop_with_confirmation(page, servers):
    server = servers()
    open_console(page, server)
    tid(page, "go-live").click()
    poll(lambda: server.state()["isLive"], 10, "GET /api/stream/state to be live")
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "live")

    tid(page, "stop").click()
    dialog = tid(page, "stop-dialog")
    expect(dialog).to_be_visible()
    expect(tid(page, "cancel-stop")).to_be_focused()
    shot(page, "stop-dialog")
    page.keyboard.press("Enter")  # on the focused Cancel: nothing harmful
    expect(dialog).to_be_hidden()

    tid(page, "stop").click()
    tid(page, "cancel-stop").click()
    expect(dialog).to_be_hidden()
    # A stop would have been sent from the click handler itself: none was, and it is live.
    assert not [u for u in page.urls if u.endswith("/api/stream/stop")], page.urls
    assert server.state()["isLive"] is True

    tid(page, "stop").click()
    tid(page, "confirm-stop").click()
    poll(lambda: not server.state()["isLive"], 10, "GET /api/stream/state to be stopped")
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "stopped")
    expect(tid(page, "go-live")).to_be_enabled()
    no_errors(page)


def test_take_with_a_fade_changes_the_program(page, servers):
    server = servers()
    server.api("POST", "/api/scenes", {"id": "red", "name": "Red", "scene": solid_scene("#ff0000")})
    server.api("POST", "/api/scenes", {"id": "blue", "name": "Blue", "scene": solid_scene("#0000ff")})
    server.api("POST", "/api/scenes/red/activate", {})
    server.api("POST", "/api/stream/start")
    player = Player(server.rtmp_play_url(), server.dir)
    player.wait_colour((255, 0, 0), 20, "the red scene on air")

    open_console(page, server)
    expect(tid(page, "scene-red")).to_have_attribute("data-tally", "onair")
    tid(page, "scene-blue").click()
    expect(tid(page, "scene-blue")).to_have_attribute("data-tally", "next")
    tid(page, "transition-kind").select_option("fade")
    tid(page, "transition-duration").fill("1000")
    taken = time.monotonic()
    tid(page, "take").click()

    player.wait_colour((0, 0, 255), 10, "the blue scene on air after the take", since=taken)
    # The fade: frames between red and blue (both channels well up) before the blue ones.
    mixed = [c for c in player.colours(taken) if c[0] > 60 and c[2] > 60]
    assert len(mixed) >= 5, f"no fade seen between red and blue: {player.colours(taken)}"
    assert next(s for s in server.api("GET", "/api/scenes") if s["id"] == "blue")["active"]
    expect(tid(page, "scene-blue")).to_have_attribute("data-tally", "onair")
    expect(tid(page, "scene-blue")).to_contain_text("ON AIR")
    expect(tid(page, "scene-red")).not_to_contain_text("ON AIR")
    shot(page, "rundown-taken")
    no_errors(page)


def test_template_form_updates_params_and_shows_the_servers_refusal(page, servers):
    lower_third = os.path.join(TEMPLATES, "lower_third.wasm")
    hostile = os.path.join(GUESTS, "hostile.wasm")
    for f, how in ((lower_third, "cd templates"), (hostile, "cd tests/guests")):
        assert os.path.exists(f), f"{f} is missing: ({how} && cargo build --release --target wasm32-wasip2)"
    server = servers(preview=True)
    server.upload_template(lower_third)
    server.upload_template(hostile)
    server.api("POST", "/api/scene/layers", {
        "id": "lt", "kind": "template", "position": {"x": 0, "y": 820, "width": 1280, "height": 200},
        "template": {"id": "lower-third", "params": {"name": "Jane Doe", "title": "Presenter"}}})
    server.api("POST", "/api/scene/layers", {
        "id": "box", "kind": "template", "position": {"x": 1500, "y": 60, "width": 320, "height": 180},
        "template": {"id": "hostile", "params": {"mode": "ok", "color": "#00ff00"}}})
    server.api("POST", "/api/stream/start")
    open_console(page, server)

    # An edit goes on air with Update.
    tid(page, "layer-lt").get_by_role("button", name="lt").first.click()
    form = tid(page, "template-form-lt")
    expect(form).to_be_visible()
    form.locator('[data-field="/name"] input').fill("Ada Lovelace")
    form.locator('[data-field="/title"] input').fill("Mathematician")
    tid(page, "template-update").click()
    expect(form.get_by_role("status")).to_contain_text("Updated")
    params = server.api("GET", "/api/scene/layers/lt")["template"]["params"]
    assert params["name"] == "Ada Lovelace" and params["title"] == "Mathematician", params
    page.wait_for_timeout(300)  # the preview catches up, for the screenshot
    form.evaluate("(f) => window.scrollTo(0, f.getBoundingClientRect().top + window.scrollY - 80)")
    shot(page, "template-form")

    # A value against the schema is caught before anything is sent.
    accent = form.locator('[data-field="/accentColor"]')
    accent.locator('input[type="text"]').fill("#12")
    tid(page, "template-update").click()
    expect(accent.get_by_test_id("field-error")).to_contain_text("#rrggbb")
    assert server.api("GET", "/api/scene/layers/lt")["template"]["params"]["accentColor"] == "#e63946"

    # One only the template itself refuses (its configure): the server's 422, at its field.
    tid(page, "layer-box").get_by_role("button", name="box").first.click()
    form = tid(page, "template-form-box")
    colour = form.locator('[data-field="/color"]')
    colour.locator("input").fill("#12")
    with page.expect_response(lambda r: r.url.endswith("/api/scene/layers/box")) as answer:
        tid(page, "template-update").click()
    refused = answer.value
    assert refused.status == 422, refused.text()
    error = refused.json()["error"]
    assert error["code"] == "invalid_params"
    said = error["message"].split("params: ", 1)[1]  # the template's own words
    assert said == 'color must be "#rrggbb"', error
    expect(colour.get_by_test_id("field-error")).to_have_text(said)
    expect(form.get_by_test_id("form-error")).to_have_text(error["message"])
    assert server.api("GET", "/api/scene/layers/box")["template"]["params"]["color"] == "#00ff00"
    shot(page, "template-form-refused")
    no_errors(page, allow=["status of 422"])


def test_reconnects_to_a_restarted_server_and_shows_its_fresh_state(page, servers):
    server = servers()
    server.api("POST", "/api/scenes", {"id": "before", "name": "Before the restart", "scene": solid_scene("#00ff00")})
    open_console(page, server)
    expect(tid(page, "scene-before")).to_be_visible()

    server.kill()
    expect(tid(page, "connection")).to_have_attribute("data-state", "reconnecting")
    expect(tid(page, "connection")).to_contain_text("Reconnecting")
    shot(page, "reconnecting")
    server.launch()  # same ports, fresh in-memory state
    server.api("POST", "/api/stream/start")
    expect(tid(page, "connection")).to_have_attribute("data-state", "connected", timeout=15_000)
    expect(tid(page, "scene-before")).to_have_count(0)
    expect(tid(page, "scene-default")).to_be_visible()
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "live")
    no_errors(page, allow=["WebSocket connection to", "net::ERR_CONNECTION_REFUSED"])


def test_shortcut_map_and_space_takes_the_selected_scene(page, servers):
    server = servers()
    server.api("POST", "/api/scenes", {"id": "studio", "name": "Studio", "scene": solid_scene("#00ff00")})
    server.api("POST", "/api/scenes", {"id": "outro", "name": "Outro", "scene": solid_scene("#ffffff")})
    open_console(page, server)

    page.locator("body").click(position={"x": 5, "y": 795})  # focus nothing in particular
    page.keyboard.press("?")
    expect(tid(page, "shortcut-map")).to_be_visible()
    expect(tid(page, "shortcut-map")).to_contain_text("Space")
    shot(page, "shortcut-map")
    page.keyboard.press("Escape")
    expect(tid(page, "shortcut-map")).to_be_hidden()

    tid(page, "scene-outro").click()
    expect(tid(page, "scene-outro")).to_have_attribute("data-tally", "next")
    page.keyboard.press(" ")
    poll(lambda: next(s for s in server.api("GET", "/api/scenes") if s["id"] == "outro")["active"], 5,
         "scene outro to be active after Space")
    expect(tid(page, "scene-outro")).to_contain_text("ON AIR")
    no_errors(page)


def test_destinations_are_added_shown_connected_without_their_key_and_removed(page, servers):
    server = servers()
    port = free_port()
    key = "s3cret-key"
    # A receiver standing for a platform's ingest: ffmpeg listening for one RTMP publisher.
    spawn(["ffmpeg", "-nostdin", "-loglevel", "error", "-listen", "1", "-i",
           f"rtmp://127.0.0.1:{port}/app/{key}", "-f", "null", "-"],
          os.path.join(server.dir, "ingest.log"))
    server.api("POST", "/api/stream/start")
    open_console(page, server)

    tid(page, "destination-id").fill("ingest")
    tid(page, "destination-url").fill(f"rtmp://127.0.0.1:{port}/app/{key}")
    tid(page, "destination-add-submit").click()
    row = tid(page, "destination-ingest")
    expect(row).to_have_attribute("data-state", "live", timeout=15_000)
    expect(row).to_contain_text("Connected")
    expect(tid(page, "destinations")).not_to_contain_text(key)
    assert tid(page, "destination-url").input_value() == "", "the key stays in the form"
    status = server.api("GET", "/api/health")["components"]["destinations"]["ingest"]
    assert status["state"] == "live", status
    shot(page, "destinations")

    tid(page, "destination-remove-ingest").click()
    tid(page, "confirm-ok").click()
    expect(row).to_have_count(0)
    assert server.api("GET", "/api/stream/config")["destinations"] == []
    assert server.state()["isLive"] is True
    no_errors(page)


# The colour at the centre of an <img> and its natural size, read back through a canvas.
PICTURE_CENTRE = """(img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const [r, gr, b, a] = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
  return {size: [img.naturalWidth, img.naturalHeight], rgba: [r, gr, b, a]};
}"""


def sign_in(page, server, token=None):
    page.goto(server.url("/"))
    tid(page, "token").fill(token or server.token)
    tid(page, "signin-submit").click()
    expect(tid(page, "connection")).to_have_attribute("data-state", "connected")


def test_thumbnails_of_inputs_and_assets_and_all_graphics_out_asks_first(page, servers):
    lower_third = os.path.join(TEMPLATES, "lower_third.wasm")
    assert os.path.exists(lower_third), f"{lower_third} is missing: (cd templates && cargo build --release --target wasm32-wasip2)"
    server = servers(token="thumb-t0ken")
    png, clip = os.path.join(server.dir, "green.png"), os.path.join(server.dir, "red.mp4")
    for out, args in ((png, ["-f", "lavfi", "-i", "color=c=0x00ff00:s=64x48", "-frames:v", "1"]),
                      (clip, ["-f", "lavfi", "-i", "color=c=red:s=320x180:r=30", "-t", "2",
                              "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])):
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, out], check=True)
    with open(png, "rb") as f:
        asset = server.api("POST", "/api/assets?name=green", raw=f.read(), ctype="image/png")
    with open(clip, "rb") as f:
        media = server.api("POST", "/api/media?name=red", raw=f.read(), ctype="video/mp4")
    server.api("POST", "/api/inputs", {"id": "reel", "name": "Reel", "kind": "file", "url": media["id"]})
    server.upload_template(lower_third)
    server.api("POST", "/api/scene/layers", {
        "id": "lt", "kind": "template", "position": {"x": 0, "y": 120, "width": 320, "height": 60},
        "template": {"id": "lower-third", "params": {"name": "Jane Doe", "visible": True}}})
    server.api("POST", "/api/scene/layers", {
        "id": "logo", "kind": "image", "position": {"x": 8, "y": 8, "width": 64, "height": 48},
        "image": {"asset": asset["id"]}})
    server.api("POST", "/api/stream/start")
    sign_in(page, server)  # the pictures are behind the token too

    # The input's latest picture, fetched with the token, refreshed while it plays.
    thumb = tid(page, "input-thumb-reel")
    expect(thumb).to_be_visible(timeout=10_000)
    got = thumb.evaluate(PICTURE_CENTRE)
    r, g, b, _ = got["rgba"]
    assert got["size"] == [320, 180] and r > 200 and g < 60 and b < 60, got
    first = thumb.get_attribute("src")
    poll(lambda: tid(page, "input-thumb-reel").get_attribute("src") != first, 10,
         "the input's thumbnail to be fetched again")
    # The asset's, as the server made it.
    thumb = tid(page, f"asset-thumb-{asset['id']}")
    expect(thumb).to_be_visible()
    got = thumb.evaluate(PICTURE_CENTRE)
    r, g, b, a = got["rgba"]
    assert got["size"] == [64, 48] and r < 4 and g > 250 and b < 4 and a == 255, got
    tid(page, "input-reel").evaluate("(e) => e.scrollIntoView({block: 'center'})")
    shot(page, "inputs-thumbnails")

    # All graphics out: never at one click (Cancel is focused), then only the template layers.
    tid(page, "all-out").click()
    expect(tid(page, "confirm-dialog")).to_contain_text("Images, text, shapes and video stay")
    expect(tid(page, "confirm-cancel")).to_be_focused()
    page.keyboard.press("Enter")
    expect(tid(page, "confirm-dialog")).to_be_hidden()
    assert server.api("GET", "/api/scene/layers/lt")["template"]["params"]["visible"] is True
    tid(page, "all-out").click()
    tid(page, "confirm-ok").click()
    poll(lambda: server.api("GET", "/api/scene/layers/lt")["template"]["params"]["visible"] is False, 5,
         "the lower third to be taken out")
    logo = server.api("GET", "/api/scene/layers/logo")
    assert logo.get("visible", True) is True, logo
    expect(tid(page, "all-out")).to_be_disabled()
    no_errors(page, allow=["401"])  # what the page asked before the sign-in


def test_record_shows_its_time_and_its_file_downloads_and_plays(page, servers):
    server = servers(token="rec-t0ken")
    sign_in(page, server)
    expect(tid(page, "record")).to_be_disabled()  # not live: nothing to record
    server.api("POST", "/api/stream/start")
    expect(tid(page, "record")).to_be_enabled()
    tid(page, "record").click()
    rec = tid(page, "recording-rec-1")
    expect(rec).to_have_attribute("data-state", "recording")
    expect(tid(page, "recording-on")).to_contain_text("REC 00:00:0")
    expect(tid(page, "recording-on")).to_contain_text("REC 00:00:03", timeout=8_000)
    tid(page, "recordings").scroll_into_view_if_needed()
    shot(page, "recordings")
    tid(page, "record-stop").click()
    expect(rec).to_have_attribute("data-state", "done")
    expect(tid(page, "recording-on")).to_have_count(0)
    expect(tid(page, "record")).to_be_enabled()

    # The download goes through a ticket link: the browser sends no token.
    with page.expect_download() as download:
        tid(page, "recording-file-0-rec-1").click()
    assert download.value.suggested_filename == "rec-1-1.mp4"
    path = os.path.join(server.dir, "downloaded.mp4")
    download.value.save_as(path)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", path],
        check=True, capture_output=True).stdout)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and kinds["audio"]["codec_name"] == "aac", probe
    done = server.api("GET", "/api/recordings/rec-1")
    assert int(kinds["video"]["nb_read_frames"]) == done["files"][0]["frames"] >= 90, done

    tid(page, "recording-delete-rec-1").click()
    tid(page, "confirm-ok").click()
    expect(rec).to_have_count(0)
    assert server.api("GET", "/api/recordings") == []
    no_errors(page, allow=["401"])  # what the page asked before the sign-in


def number(page, testid):
    """The number a meter shows, None for "—"."""
    text = tid(page, testid).inner_text().strip()
    return None if text == "—" else float(text)


def rest(page, server, path):
    """GET `path` of `server`, once `page` has had a moment to send what it has queued (with
    SM_WEB_DIR its requests pass a route, which runs only inside Playwright's calls)."""
    page.wait_for_timeout(20)
    return server.api("GET", path)


def test_mixer_moves_faders_mutes_and_meters_the_program(page, servers):
    server = servers(audio="mix")
    # A sound-only file: a 1 kHz tone at -23 LUFS (EBU R128's target; 0.1 would be -20).
    wav = os.path.join(server.dir, "tone.wav")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "aevalsrc=0.0708*sin(2*PI*1000*t):s=48000:c=stereo:d=4", "-c:a", "pcm_s16le", wav], check=True)
    with open(wav, "rb") as f:
        media = server.api("POST", "/api/media?name=tone", raw=f.read(), ctype="audio/wav")
    assert "videoCodec" not in media and media["width"] == 0, media
    server.api("POST", "/api/inputs", {"id": "tone", "name": "Tone", "kind": "file", "url": media["id"], "loop": True})
    patches = []
    page.on("request", lambda r: r.method == "PATCH" and patches.append(r.url))
    open_console(page, server)

    strip = tid(page, "audio-strip-tone")
    expect(strip).to_contain_text("Tone")
    expect(tid(page, "input-tone")).to_contain_text("sound only")  # no picture asked for
    expect(tid(page, "loudness-momentary")).to_have_text("—")  # stopped: nothing metered
    tid(page, "go-live").click()
    expect(tid(page, "stream-state")).to_have_attribute("data-state", "live")
    momentary = poll(lambda: (m := number(page, "loudness-momentary")) is not None and -24 <= m <= -22 and m,
                     10, "the program's momentary loudness at -23 LUFS")
    for testid in ("loudness-short-term", "loudness-integrated", "loudness-true-peak"):
        poll(lambda: number(page, testid) is not None, 5, f"a number in {testid}")
    peak = number(page, "loudness-true-peak")
    assert peak < -1, peak  # far below the limiter's ceiling: not highlighted
    expect(tid(page, "loudness-true-peak").locator("xpath=ancestor::div[1]")).not_to_have_class(re.compile("warn"))
    expect(tid(page, "audio-level-tone")).to_contain_text(re.compile(r"-\d+\.\d"))
    print("program momentary", momentary, "LUFS, true peak", peak, "dBTP")

    # The input's fader, by keyboard: 12 steps of 0.5 dB down, fewer requests than steps.
    fader = tid(page, "audio-gain-tone")
    fader.focus()
    for _ in range(12):
        page.keyboard.press("ArrowLeft")
    expect(strip).to_contain_text("-6.0 dB")
    poll(lambda: rest(page, server, "/api/inputs/tone").get("audio", {}).get("gainDb") == -6, 5,
         "GET /api/inputs/tone to have audio.gainDb -6")
    sent = [u for u in patches if u.endswith("/api/inputs/tone")]
    assert 1 <= len(sent) < 12, sent
    expect(fader).to_have_value("-6")
    poll(lambda: (m := number(page, "loudness-momentary")) is not None and -30 <= m <= -28, 5,
         "the program's momentary loudness 6 dB down, at -29 LUFS")
    tid(page, "audio-panel").scroll_into_view_if_needed()
    shot(page, "audio-mixer")

    mute = tid(page, "audio-mute-tone")
    expect(mute).to_have_attribute("aria-pressed", "false")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    poll(lambda: rest(page, server, "/api/inputs/tone")["audio"] == {"gainDb": -6, "muted": True}, 5,
         "GET /api/inputs/tone to have audio.muted")
    expect(strip).to_contain_text("MUTED")

    # The master strip and the limiter.
    master = tid(page, "audio-master-gain")
    master.focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    poll(lambda: rest(page, server, "/api/audio")["master"]["gainDb"] == -3, 5, "GET /api/audio master.gainDb -3")
    tid(page, "audio-master-mute").click()
    expect(tid(page, "audio-master-mute")).to_have_attribute("aria-pressed", "true")
    limiter = tid(page, "audio-limiter")
    expect(limiter).to_have_attribute("aria-pressed", "true")
    limiter.click()
    expect(limiter).to_have_attribute("aria-pressed", "false")
    poll(lambda: rest(page, server, "/api/audio") == {"master": {"gainDb": -3, "muted": True}, "limiter": False}, 5,
         "GET /api/audio with the master muted and the limiter off")

    # A refusal is shown, and the fader goes back to the server's value.
    said = "master.gainDb: -3.5 is outside -60..=12"
    page.route("**/api/audio", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body=json.dumps({"error": {"code": "out_of_range", "message": said}}))
        if route.request.method == "PATCH" else route.fallback())
    master.focus()
    page.keyboard.press("ArrowLeft")
    expect(tid(page, "audio-master-gain-error")).to_have_text(said)
    expect(master).to_have_value("-3")
    expect(tid(page, "log")).to_contain_text(said)
    tid(page, "audio-panel").scroll_into_view_if_needed()
    shot(page, "audio-mixer-refused")
    assert server.api("GET", "/api/audio")["master"]["gainDb"] == -3
    page.unroute("**/api/audio")
    no_errors(page, allow=["status of 422"])


def test_the_console_offers_only_what_the_role_may_do(new_page, servers):
    viewer, viewer_entry = new_token("viewer", "wall")
    operator, operator_entry = new_token("operator", "desk")
    server = servers(token="adm1n-t0ken", config=viewer_entry + operator_entry)
    cases = [
        # role, then controls enabled and disabled for it
        ("viewer", viewer, [], ["go-live", "destination-add-submit", "template-upload", "record", "scene-new"]),
        ("operator", operator, ["go-live", "scene-new"], ["destination-add-submit", "template-upload"]),
        ("admin", server.token, ["go-live", "scene-new", "destination-add-submit", "template-upload"], []),
    ]
    for role, token, enabled, disabled in cases:
        p = new_page()
        sign_in(p, server, token)
        expect(tid(p, "role")).to_have_attribute("data-role", role)
        for t in enabled:
            expect(tid(p, t), f"{t} for {role}").to_be_enabled()
        for t in disabled:
            expect(tid(p, t), f"{t} for {role}").to_be_disabled()
        # 401s before the sign-in only; nothing the console offered was refused (403).
        no_errors(p, allow=["401"])
        shot(p, f"console-{role}")
    assert server.state()["isLive"] is False
