// What a session may do: the ONE place where the console decides it.
//
// Roles (viewer / operator / admin, /work/shared/DESIGN.md "Access") are not implemented by
// the server yet, so every action is allowed. When they are, the session will carry its role
// and this table applies (the server stays the authority: a refused call is a 403 anyway):
//   viewer   – view (every GET, the feed)
//   operator – stream.control, scene.take, scene.edit, layer.edit, template.params,
//              input.toggle, recording.control, audio.mix
//   admin    – + stream.config, template.upload, template.swap, template.delete,
//              input.create, input.delete, asset.delete, template.rollback, recording.delete
//   (asset.upload, media.upload and media.delete are not named in DESIGN.md; assumed admin)

/**
 * @param {{signedIn: boolean, role?: string}} session
 * @param {string} action one of the names above
 */
// eslint-disable-next-line no-unused-vars
export function can(session, action) {
  return true;
}
