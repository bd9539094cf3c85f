// What a session may do: the ONE place where the console decides it.
//
// The session's role comes from GET /api/me (viewer / operator / admin; DESIGN.md "Access",
// docs/api.md "Access"). The server stays the authority: this only keeps the console from
// offering what would be refused with 403 anyway, and mirrors the server's table
// (host/server/src/api/access.rs, ROUTE_ROLES).

const RANK = { viewer: 0, operator: 1, admin: 2 };

/** The least role of each console action. */
export const NEEDS = {
  'stream.control': 'operator',
  'scene.take': 'operator',
  'scene.edit': 'operator',
  'layer.edit': 'operator',
  'template.params': 'operator',
  'input.toggle': 'operator',
  'recording.control': 'operator',
  'recording.delete': 'operator',
  'audio.mix': 'operator',
  'asset.upload': 'operator',
  'media.upload': 'operator',
  'stream.config': 'admin',
  'template.upload': 'admin',
  'template.swap': 'admin',
  'template.delete': 'admin',
  'template.rollback': 'admin',
  'input.create': 'admin',
  'input.delete': 'admin',
  'asset.delete': 'admin',
  'media.delete': 'admin',
};

/**
 * Whether `session` may do `action`. A session whose role is not known yet may only look.
 * @param {{signedIn: boolean, role?: string}} session
 * @param {string} action one of the names of NEEDS
 */
export function can(session, action) {
  const need = NEEDS[action];
  if (need === undefined) return false;
  const rank = RANK[session.role];
  return rank !== undefined && rank >= RANK[need];
}
