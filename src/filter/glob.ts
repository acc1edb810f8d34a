/**
 * Globs for --include/--exclude, compiled to one regular expression that means the same in JavaScript
 * (flags `su`) and in PostgreSQL's ARE flavour, so the state store can filter in SQL and we can filter
 * in memory with identical results.
 *
 * Syntax (a key is matched whole; `/` separates segments but is otherwise an ordinary character):
 *   *          any run of characters other than `/`, possibly empty (`photos/*` matches `photos/a.jpg` and
 *              the folder marker `photos/`, not `photos/2024/a.jpg`)
 *   **         a whole segment only. Alone: everything. Followed by a slash (at the start or after a
 *              slash): zero or more whole segments, so `a/**` + `/b` matches `a/b` and `a/x/y/b`, and `**` +
 *              `/*.jpg` every .jpg at any depth. Last, after a slash: everything below, so `photos/**`
 *              matches every key starting with `photos/` (not `photos` itself). `**` inside a segment
 *              (`a**`, `**.jpg`) and `***` are refused rather than guessed.
 *   ?          one character other than `/` (one Unicode code point: an emoji is one character)
 *   [abc] [a-z] [!abc] [^abc] [[:alpha:]]   one character from / not from a set (POSIX classes are ASCII,
 *              as picomatch defines them); a set never matches `/`
 *   {a,b} {a,{b,c}} {1..10} {01..10} {a..e} {1..9..2}   alternatives and ranges, expanded before matching
 *              (at most 256 alternatives per pattern); `{a}` without a comma is literal, as in bash
 *   \x         the character x itself (`\*`, `\[`, `\{`, `\\`, `\!`)
 * Everything else is literal, byte for byte: spaces, `+`, `%`, `(`, `)`, `|`, `@`, `"`, `.`, a leading `./`,
 * `//`, non-ASCII (no Unicode normalization). Dotfiles are ordinary (`*` matches `.git`), and so are the
 * segments `.` and `..`. Extglobs (`@(a|b)`, `!(a)`) are not supported: their characters are literal.
 * Refused as malformed: an empty pattern, a leading `!` (use --exclude), an unmatched `[`, `]`, `{` or `}`,
 * a reversed range, an unknown `[:class:]`, a set that could only match `/`, a trailing lone `\`, NUL.
 *
 * Where this differs from picomatch 4 (dot: true) on purpose, because its behaviour there is a quirk or
 * does not fit S3 keys: `[!abc]` negates (picomatch reads it as the set {!, a, b, c} unless `posix` is set);
 * `{1..10}` is 1 to 10 (picomatch emits the class `[1-10]`); `(` `)` are literal (a regex group there);
 * `*` may match an empty segment; `.` and `..` segments match; `?` is one code point, not one UTF-16 unit;
 * `**` also matches newlines; `./` and `"` are literal; a set never matches `/`; unbalanced brackets are
 * errors, not literals. Elsewhere the unit tests check that both select the same keys.
 *
 * The emitted regular expressions use only these constructs, each of which means the same in JavaScript
 * (`new RegExp(source, 'su')`) and PostgreSQL ARE (`key ~ $1`, no embedded options, no flags):
 *   ^ and $ at the two ends only; (?:x|y) and (?:x)? groups; .* (any characters, newlines included: the
 *   `s` flag in JS, ARE's default in PostgreSQL); [^/] and [^/]*; bracket sets [...] and [^.../] holding
 *   literal characters, ranges x-y (in code point order) and the escapes \\ \] \[ \^ \-; outside sets the
 *   escapes \^ \$ \\ \. \* \+ \? \( \) \[ \] \{ \} \| ; \uXXXX (exactly four hex digits) for control
 *   characters U+0001..U+001F and U+007F; every other character (including `/`, `-` and non-ASCII)
 *   literal. No lookaround, no lazy quantifiers, no {n,m} bounds, no backreferences, no \d \w \s classes.
 * PostgreSQL ARE: `\` followed by a non-alphanumeric character is that character, inside and outside
 * bracket expressions; `[` is always escaped inside a set so `[:`, `[.` and `[=` never occur there;
 * ranges compare code points whatever the database's collation. Checked on PostgreSQL 15 (a C.UTF-8 and an
 * ICU en-US database) by the optional block at the end of test/unit/object-filter.test.ts.
 */
import { UsageError } from '../errors.js';

/** One alternative of a pattern after brace expansion. */
export interface GlobAlternative {
  /** Regular expression source for the alternative, without anchors (see the constructs above). */
  source: string;
  /** The literal text every match starts with (up to the first wildcard, set or `**`). */
  literalPrefix: string;
}

export const MAX_ALTERNATIVES = 256;
const MAX_PATTERN_LENGTH = 4096;

/** Compiles a glob; `flag` names the option in error messages. */
export function compileGlob(glob: string, flag: string): GlobAlternative[] {
  const fail = (why: string): never => {
    throw new UsageError(`${flag} "${glob}": ${why}`);
  };
  if (glob === '') fail('a pattern cannot be empty');
  if (glob.length > MAX_PATTERN_LENGTH) fail(`a pattern is at most ${MAX_PATTERN_LENGTH} characters`);
  if (glob.includes('\u0000')) fail('a pattern cannot contain NUL');
  if (glob.startsWith('!')) {
    fail(`a leading ! does not negate here: use --exclude "${glob.slice(1)}" (or \\! for a literal !)`);
  }
  const expanded = expandBraces(glob, fail);
  return expanded.map((text) => compileBraceFree(text, fail));
}

/** Escapes a literal string (a catalog prefix) for the regular expression flavour described above. */
export function escapeLiteral(text: string): string {
  let out = '';
  for (const char of text) out += literal(char);
  return out;
}

const REGEX_SPECIAL = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|']);
const SET_SPECIAL = new Set(['\\', ']', '[', '^', '-']);

function controlEscape(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

function isControl(code: number): boolean {
  return code < 0x20 || code === 0x7f;
}

function literal(char: string): string {
  const code = char.codePointAt(0)!;
  if (isControl(code)) return controlEscape(code);
  return REGEX_SPECIAL.has(char) ? `\\${char}` : char;
}

// ---------------------------------------------------------------------------------------------------
// Brace expansion

type Fail = (why: string) => never;

/**
 * Expands braces into brace-free globs (escapes and sets kept as they are, for the next stage). Commas
 * and braces inside a set or after a backslash are not brace syntax.
 */
function expandBraces(glob: string, fail: Fail): string[] {
  let index = 0;

  // Parses until `,` or `}` of the enclosing group (depth > 0) or the end; returns the expansions.
  const parseSequence = (depth: number): string[] => {
    let results: string[] = [''];
    let text = '';
    const flush = (): void => {
      if (text === '') return;
      results = results.map((r) => r + text);
      text = '';
    };
    while (index < glob.length) {
      const char = glob[index]!;
      if (char === '\\') {
        if (index + 1 >= glob.length) fail('a pattern cannot end with a lone \\ (write \\\\ for a backslash)');
        const next = String.fromCodePoint(glob.codePointAt(index + 1)!);
        text += char + next;
        index += 1 + next.length;
      } else if (char === '[') {
        const end = setEnd(glob, index);
        if (end === -1) fail('unmatched [ (write \\[ for a literal [)');
        text += glob.slice(index, end);
        index = end;
      } else if (char === '{') {
        index++;
        const options: string[][] = [];
        const raw = index;
        for (;;) {
          options.push(parseSequence(depth + 1));
          if (index >= glob.length) fail('unmatched { (write \\{ for a literal {)');
          if (glob[index] === '}') break;
          index++; // the comma
        }
        const inner = glob.slice(raw, index);
        index++; // the closing brace
        flush();
        let values: string[];
        if (options.length > 1) {
          values = options.flat();
        } else {
          const range = expandRange(inner, fail);
          // `{a}` is literal, as in bash: keep the braces (escaped) around the expanded inside.
          values = range ?? options[0]!.map((option) => `\\{${option}\\}`);
        }
        if (results.length * values.length > MAX_ALTERNATIVES) {
          fail(`braces expand to more than ${MAX_ALTERNATIVES} alternatives`);
        }
        results = results.flatMap((r) => values.map((v) => r + v));
      } else if (char === '}') {
        if (depth === 0) fail('unmatched } (write \\} for a literal })');
        break;
      } else if (char === ',' && depth > 0) {
        break;
      } else {
        text += char;
        index++;
      }
    }
    flush();
    return results;
  };

  return parseSequence(0);
}

/** `{1..10}`, `{10..1}`, `{01..10}`, `{1..9..2}`, `{a..e}`: the values, escaped as glob literals; else undefined. */
function expandRange(inner: string, fail: Fail): string[] | undefined {
  const numeric = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(inner);
  const letters = /^([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?$/.exec(inner);
  const match = numeric ?? letters;
  if (!match) return undefined;
  const step = Math.abs(Number(match[3] ?? '1'));
  if (step === 0 || !Number.isSafeInteger(step)) fail(`the step of {${inner}} must be a whole number other than 0`);
  const from = numeric ? Number(match[1]) : match[1]!.charCodeAt(0);
  const to = numeric ? Number(match[2]) : match[2]!.charCodeAt(0);
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) fail(`{${inner}} is out of range`);
  const count = Math.floor(Math.abs(to - from) / step) + 1;
  if (count > MAX_ALTERNATIVES) fail(`{${inner}} expands to more than ${MAX_ALTERNATIVES} alternatives`);
  // Zero-padded like bash when an end is written with a leading zero: {01..10} -> 01 02 ... 10.
  const padded = numeric && [match[1]!, match[2]!].some((end) => /^-?0\d/.test(end));
  const width = padded ? Math.max(match[1]!.length, match[2]!.length) : 0;
  const values: string[] = [];
  for (let i = 0, value = from; i < count; i++, value += from <= to ? step : -step) {
    if (!numeric) {
      const char = String.fromCharCode(value);
      values.push(/[A-Za-z0-9]/.test(char) ? char : `\\${char}`);
    } else {
      const digits = String(Math.abs(value)).padStart(width - (value < 0 ? 1 : 0), '0');
      values.push(value < 0 ? `-${digits}` : digits);
    }
  }
  return values;
}

/** Index just past the `]` that closes the set opened at `start`, or -1. */
function setEnd(glob: string, start: number): number {
  let i = start + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  if (glob[i] === ']') i++; // a `]` first in the set is literal
  while (i < glob.length) {
    const char = glob[i]!;
    if (char === '\\') {
      i += 2;
    } else if (char === '[' && glob[i + 1] === ':') {
      const close = glob.indexOf(':]', i + 2);
      i = close === -1 ? i + 1 : close + 2;
    } else if (char === ']') {
      return i + 1;
    } else {
      i++;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------
// Brace-free globs

type Token =
  | { kind: 'literal'; char: string }
  | { kind: 'slash' }
  | { kind: 'star' }
  | { kind: 'globstar' }
  | { kind: 'qmark' }
  | { kind: 'set'; source: string };

function compileBraceFree(glob: string, fail: Fail): GlobAlternative {
  const tokens = tokenize(glob, fail);
  let source = '';
  let literalPrefix = '';
  let inPrefix = true;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind !== 'literal' && token.kind !== 'slash') inPrefix = false;
    switch (token.kind) {
      case 'literal':
        source += literal(token.char);
        if (inPrefix) literalPrefix += token.char;
        break;
      case 'slash':
        source += '/';
        if (inPrefix) literalPrefix += '/';
        break;
      case 'star':
        source += '[^/]*';
        break;
      case 'qmark':
        source += '[^/]';
        break;
      case 'set':
        source += token.source;
        break;
      case 'globstar':
        if (tokens[i + 1]?.kind === 'slash') {
          // Zero or more whole segments; a run of `**/**/` means the same as one.
          while (tokens[i + 2]?.kind === 'globstar' && tokens[i + 3]?.kind === 'slash') i += 2;
          if (tokens[i + 2]?.kind === 'globstar' && i + 3 === tokens.length) {
            source += '.*';
            i += 2;
          } else {
            source += '(?:.*/)?';
            i += 1;
          }
        } else {
          source += '.*';
        }
        break;
    }
  }
  return { source, literalPrefix };
}

function tokenize(glob: string, fail: Fail): Token[] {
  const tokens: Token[] = [];
  const chars = Array.from(glob);
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!;
    if (char === '\\') {
      const next = chars[++i];
      if (next === undefined) fail('a pattern cannot end with a lone \\ (write \\\\ for a backslash)');
      tokens.push(next === '/' ? { kind: 'slash' } : { kind: 'literal', char: next! });
    } else if (char === '/') {
      tokens.push({ kind: 'slash' });
    } else if (char === '?') {
      tokens.push({ kind: 'qmark' });
    } else if (char === '*') {
      let run = 1;
      while (chars[i + 1] === '*') {
        run++;
        i++;
      }
      const wholeSegment =
        (tokens.length === 0 || tokens[tokens.length - 1]!.kind === 'slash') &&
        (i + 1 === chars.length || chars[i + 1] === '/');
      if (run === 1) {
        tokens.push({ kind: 'star' });
      } else if (run === 2 && wholeSegment) {
        tokens.push({ kind: 'globstar' });
      } else {
        fail(
          '** must be a whole path segment (like photos/**, **/*.jpg or a/**/b); use * within a segment',
        );
      }
    } else if (char === '[') {
      const { source, end } = parseSet(chars, i, fail);
      tokens.push({ kind: 'set', source });
      i = end - 1;
    } else if (char === ']') {
      fail('unmatched ] (write \\] for a literal ])');
    } else {
      tokens.push({ kind: 'literal', char });
    }
  }
  return tokens;
}

// POSIX classes, ASCII only, as picomatch defines them (NUL left out: it cannot occur in a key).
const POSIX_CLASSES: Record<string, Array<[number, number]>> = {
  alnum: [r('a', 'z'), r('A', 'Z'), r('0', '9')],
  alpha: [r('a', 'z'), r('A', 'Z')],
  ascii: [[0x01, 0x7f]],
  blank: [c(' '), c('\t')],
  cntrl: [[0x01, 0x1f], [0x7f, 0x7f]],
  digit: [r('0', '9')],
  graph: [[0x21, 0x7e]],
  lower: [r('a', 'z')],
  print: [[0x20, 0x7e]],
  punct: Array.from('-!"#$%&\'()*+,./:;<=>?@[\\]^_`{|}~', c),
  space: [c(' '), c('\t'), c('\r'), c('\n'), c('\v'), c('\f')],
  upper: [r('A', 'Z')],
  word: [r('A', 'Z'), r('a', 'z'), r('0', '9'), c('_')],
  xdigit: [r('A', 'F'), r('a', 'f'), r('0', '9')],
};

function r(from: string, to: string): [number, number] {
  return [from.codePointAt(0)!, to.codePointAt(0)!];
}

function c(char: string): [number, number] {
  return r(char, char);
}

const SLASH = 0x2f;

/** Parses the set opened at `chars[start]`; renders it as a bracket expression that never matches `/`. */
function parseSet(chars: string[], start: number, fail: Fail): { source: string; end: number } {
  let i = start + 1;
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i++;
  const ranges: Array<[number, number]> = [];
  let first = true;
  // One character of the set: an escaped or plain character; undefined at `]` (the end) or a class.
  const readChar = (): number | undefined => {
    const char = chars[i];
    if (char === undefined) return fail('unmatched [ (write \\[ for a literal [)');
    if (char === '\\') {
      const next = chars[i + 1];
      if (next === undefined) return fail('a pattern cannot end with a lone \\ (write \\\\ for a backslash)');
      i += 2;
      return next.codePointAt(0)!;
    }
    if (char === ']' && !first) return undefined;
    i++;
    return char.codePointAt(0)!;
  };
  for (;;) {
    if (chars[i] === '[' && chars[i + 1] === ':') {
      const rest = chars.slice(i + 2).join('');
      const close = rest.indexOf(':]');
      if (close !== -1) {
        const name = rest.slice(0, close);
        const members = POSIX_CLASSES[name];
        if (!members) fail(`unknown character class [:${name}:] (known: ${Object.keys(POSIX_CLASSES).join(', ')})`);
        ranges.push(...members!);
        i += 2 + Array.from(rest.slice(0, close + 2)).length;
        first = false;
        continue;
      }
    }
    const low = readChar();
    first = false;
    if (low === undefined) {
      i++; // the closing ]
      break;
    }
    if (chars[i] === '-' && chars[i + 1] !== undefined && chars[i + 1] !== ']') {
      i++;
      if (chars[i] === '[' && chars[i + 1] === ':') fail('a range cannot end with a [:class:]');
      const high = readChar()!;
      if (high < low) {
        fail(`the range ${String.fromCodePoint(low)}-${String.fromCodePoint(high)} is reversed`);
      }
      ranges.push([low, high]);
    } else {
      ranges.push([low, low]);
    }
  }
  const merged = withoutSlash(ranges);
  if (!negated && merged.length === 0) fail('a [set] never matches /, so this one can never match');
  let source = negated ? '[^' : '[';
  for (const [low, high] of merged) {
    source += setChar(low);
    if (high > low) source += (high > low + 1 ? '-' : '') + setChar(high);
  }
  source += negated ? '/]' : ']';
  return { source, end: i };
}

/** Sorted, merged code point ranges with `/` taken out. */
function withoutSlash(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = ranges.map(([a, b]) => [a, b] as [number, number]).sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else merged.push(range);
  }
  return merged.flatMap(([low, high]): Array<[number, number]> => {
    if (low > SLASH || high < SLASH) return [[low, high]];
    const parts: Array<[number, number]> = [];
    if (low < SLASH) parts.push([low, SLASH - 1]);
    if (high > SLASH) parts.push([SLASH + 1, high]);
    return parts;
  });
}

function setChar(code: number): string {
  if (isControl(code)) return controlEscape(code);
  const char = String.fromCodePoint(code);
  return SET_SPECIAL.has(char) ? `\\${char}` : char;
}
