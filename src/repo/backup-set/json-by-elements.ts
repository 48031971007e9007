// JSON.parse of an object's text in which each array member is parsed an element at
// a time. A backup set's manifest is one line of JSON: at 100,000 files, 18 MB. Made
// into one string to parse whole, that string stayed in the heap (its large-object
// space) until the next full collection, which a backup or restore building its own
// lists reaches only at the very end: 18 MB more at their peak. Here only the object's
// other members and one element at a time become strings, each let go at once.
//
// The result is JSON.parse's for any text of that shape (arrays as the values of the
// outer object's members); any other text, and any text JSON.parse refuses, is given to
// JSON.parse whole, which then says why.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

export function parseObjectByElements(bytes: Buffer): unknown {
  const start = skipSpace(bytes, 0);
  if (bytes[start] !== OPEN_BRACE) return JSON.parse(bytes.toString());
  const arrays: unknown[][] = [];
  // The object's text with each array member's value cut to [<its number in arrays>].
  let outline = '';
  let copied = 0;
  let depth = 0;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === QUOTE) i = stringEnd(bytes, i);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (depth === 1 && c === OPEN_BRACKET) {
        const { elements, end } = arrayElements(bytes, i);
        if (elements === null) return JSON.parse(bytes.toString());
        outline += `${bytes.toString('utf8', copied, i)}[${arrays.length}]`;
        arrays.push(elements);
        copied = end + 1;
        i = end;
        continue;
      }
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  outline += bytes.toString('utf8', copied);
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(outline) as Record<string, unknown>;
  } catch {
    return JSON.parse(bytes.toString()); // its refusal, naming the position in the whole text
  }
  for (const key of Object.keys(o)) {
    const v = o[key];
    // Defined, not assigned: a member named __proto__ is a member, as JSON.parse makes it.
    if (Array.isArray(v)) Object.defineProperty(o, key, { value: arrays[v[0] as number], writable: true, enumerable: true, configurable: true });
  }
  return o;
}

/**
 * The elements of the array whose "[" is at `open`, each parsed on its own, and the index of
 * its "]"; null elements when the text is not an array JSON.parse would read.
 */
function arrayElements(bytes: Buffer, open: number): { elements: unknown[] | null; end: number } {
  const elements: unknown[] = [];
  let depth = 0;
  let from = open + 1;
  for (let i = from; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === QUOTE) i = stringEnd(bytes, i);
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && depth > 0) depth--;
    else if (depth === 0 && (c === COMMA || c === CLOSE_BRACKET)) {
      // "[]" and "[ ]" hold no element; anything else between separators must be one.
      if (!(c === CLOSE_BRACKET && elements.length === 0 && skipSpace(bytes, from) === i)) {
        try {
          elements.push(JSON.parse(bytes.toString('utf8', from, i)));
        } catch {
          return { elements: null, end: i };
        }
      }
      if (c === CLOSE_BRACKET) return { elements, end: i };
      from = i + 1;
    } else if (c === CLOSE_BRACE) return { elements: null, end: i };
  }
  return { elements: null, end: bytes.length };
}

/** The index of the quote that ends the string whose opening quote is at `open` (the text's length when none does). */
function stringEnd(bytes: Buffer, open: number): number {
  let i = open;
  for (;;) {
    i = bytes.indexOf(QUOTE, i + 1);
    if (i < 0) return bytes.length;
    let slashes = 0;
    while (bytes[i - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return i;
  }
}

function skipSpace(bytes: Buffer, i: number): number {
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return i;
}
