/** Printable ASCII without `"` and `\`: such a string is its own JSON text between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A string as JSON text, exactly as JSON.stringify writes it. Most strings on the request path
 * (ids, model and tier names, finish reasons, English text) need no escaping: those are quoted
 * directly, the rest go through JSON.stringify.
 */
export function jsonString(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}
