/** Smart Router style identifiers: a type prefix and a random alphanumeric tail (`ev_…`, `tr_…`, `tr_op_…`, `iv_…`). */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const TAIL_LENGTH = 28;

// Ids always use the platform's CSPRNG, never the injectable `random` that drives chaos: a test that pins `random` must
// still get distinct ids.
/** A fresh id such as `ev_h3K…`. */
export function newId(prefix: "ev" | "tr" | "tr_op" | "iv" | "card" | "gway_conf" | "dlv" | "att" | "wh" | "sink" | "op"): string {
  const bytes = new Uint8Array(TAIL_LENGTH);
  crypto.getRandomValues(bytes);
  let tail = "";
  // 62 does not divide 256; the slight bias does not matter for opaque ids.
  for (const byte of bytes) tail += ALPHABET.charAt(byte % ALPHABET.length);
  return `${prefix}_${tail}`;
}
