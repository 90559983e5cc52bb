/**
 * How the page names a clip: the first characters of its presentation handle.
 * The server names every clip an expert sees by an opaque handle (a hidden repeat
 * gets a new one), never by its database id.
 */
export function label(handle) {
  return String(handle).slice(0, 8);
}
