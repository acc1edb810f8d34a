import Database from 'better-sqlite3';
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { compileGlob } from '../../src/filter/glob.js';
import {
  compareKeys,
  inKeyRange,
  mergeKeyRanges,
  prefixRange,
  prefixUpperBound,
  type KeyRange,
} from '../../src/filter/key-range.js';
import {
  REGEX_FLAGS,
  inFilterRanges,
  matches,
  parseFilter,
  type FilterCandidate,
  type FilterFlags,
  type ObjectFilter,
} from '../../src/filter/object-filter.js';
import { parseUtcDate } from '../../src/filter/utc-date.js';

const T0 = '2024-06-01T00:00:00.000Z';

function filterOf(flags: FilterFlags, prefix = ''): ObjectFilter {
  const filter = parseFilter(flags, prefix);
  expect(filter).toBeDefined();
  return filter!;
}

function selects(glob: string, relativeKey: string, prefix = ''): boolean {
  return matches(filterOf({ include: glob }, prefix), { key: prefix + relativeKey, size: 1, lastModified: T0 });
}

/** Byte order, computed independently of compareKeys: the UTF-8 bytes themselves. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const regexCache = new Map<string, RegExp>();

/** What a SQL store does with the description: ranges on the key index, regexes, plain comparisons. */
function selectsLikeSql(filter: ObjectFilter, row: FilterCandidate): boolean {
  const inRange = (range: KeyRange): boolean =>
    byteCompare(row.key, range.low) >= 0 && (range.high === undefined || byteCompare(row.key, range.high) < 0);
  const regex = (source: string): boolean => {
    let compiled = regexCache.get(source);
    if (!compiled) regexCache.set(source, (compiled = new RegExp(source, REGEX_FLAGS)));
    return compiled.test(row.key);
  };
  if (!filter.keyRanges.some(inRange)) return false;
  if (filter.include.length > 0 && !filter.include.some((p) => p.ranges.some(inRange) && regex(p.regex))) return false;
  if (filter.exclude.some((p) => regex(p.regex))) return false;
  if (filter.minSize !== undefined && row.size < filter.minSize) return false;
  if (filter.maxSize !== undefined && row.size > filter.maxSize) return false;
  // Text comparison, as on the last_modified column (toISOString form).
  if (filter.modifiedAfter !== undefined && row.lastModified < filter.modifiedAfter) return false;
  if (filter.modifiedBefore !== undefined && row.lastModified >= filter.modifiedBefore) return false;
  return true;
}

/** A deterministic PRNG (mulberry32), so the generated keys are the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEGMENTS = [
  'a', 'b', 'ab', 'a1', 'a2', 'a10', 'photos', '2024', '2023', '.git', '.', '..', '', 'x.jpg', 'y.JPG', 'z.tmp',
  'é', 'ü', 'u\u0308', '😀', '日本', ' ', 'a b', '+', 'a+b', '%20', '%', '-', '!', '(1)', '[x]', '{a}', 'a\nb',
  'a*b', '\\', '~', '\u007f', '\u0001', '\uE000', '\uFFFF', '.hidden', 'foo.tar.gz', 'x',
];

function generatedKeys(count: number, seed: number): string[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const keys = new Set<string>();
  while (keys.size < count) {
    const depth = 1 + Math.floor(next() * 4);
    let key = Array.from({ length: depth }, () => pick(SEGMENTS)).join('/');
    if (next() < 0.15) key += '/';
    if (key !== '') keys.add(key);
  }
  return [...keys];
}

const PATTERNS = [
  '**', '*', '*.jpg', '**/*.jpg', '**/*.{jpg,JPG}', 'photos/**', 'a/*', 'a/**', 'a/**/b', '**/b', '?', '??', 'a/?',
  '[ab]*', '[!a]*/**', '[^a]*', '{a,b}/**', '.git/**', '**/.*', '**/', '*/', '*/*', 'é*', 'u\u0308/**', '😀/**',
  '?/**', '%20*', '+', 'a+b', '**/(1)', 'a{1..2}', 'a{1..10}', '\\[x\\]', '\\{a\\}', '{a}', '[[:digit:]]*/**',
  '[ -~]*', 'a*b', 'a\\*b', 'photos/2024/**', '**/..', '**/./**', '**/x.jpg', '*/**/*.tmp', '{photos,2023}/{a,b}*',
  'a b', ' ', '**/a\nb', '\\\\', '~/**', '-', '\\!*', '**/*', '日本/**', '**/\uFFFF', '[\uE000-\uFFFF]/**',
];

const PREFIXES = ['', 'photos/', 'dir with space/', 'ü/', 'a+b/', '😀/'];

describe('parseFilter', () => {
  it('is undefined when no filter flag is given', () => {
    expect(parseFilter({}, '')).toBeUndefined();
    expect(parseFilter({ include: [], exclude: [] }, 'photos/')).toBeUndefined();
  });

  it('is plain, JSON-serialisable data', () => {
    const filter = filterOf(
      { include: ['2024/**', '{a,b}*'], exclude: '**/*.tmp', minSize: '1KiB', maxSize: 2048, modifiedAfter: '2024-01-01' },
      'photos/',
    );
    expect(JSON.parse(JSON.stringify(filter))).toEqual(filter);
    expect(filter).toEqual({
      catalogPrefix: 'photos/',
      include: [
        { glob: '2024/**', regex: '^photos/(?:2024/.*)$', ranges: [{ low: 'photos/2024/', high: 'photos/20240' }] },
        { glob: '{a,b}*', regex: '^photos/(?:a[^/]*|b[^/]*)$', ranges: [{ low: 'photos/a', high: 'photos/c' }] },
      ],
      exclude: [
        { glob: '**/*.tmp', regex: '^photos/(?:(?:.*/)?[^/]*\\.tmp)$', ranges: [{ low: 'photos/', high: 'photos0' }] },
      ],
      keyRanges: [
        { low: 'photos/2024/', high: 'photos/20240' },
        { low: 'photos/a', high: 'photos/c' },
      ],
      minSize: 1024,
      maxSize: 2048,
      modifiedAfter: '2024-01-01T00:00:00.000Z',
    });
  });

  it('accepts one pattern as a string or several as an array', () => {
    expect(filterOf({ include: 'a/**' }).include).toHaveLength(1);
    expect(filterOf({ include: ['a/**', 'b/**'], exclude: ['x', 'y', 'z'] }).exclude).toHaveLength(3);
  });

  it('with no include covers the catalog prefix (and only it)', () => {
    const filter = filterOf({ exclude: '*.tmp' }, 'photos/');
    expect(filter.keyRanges).toEqual([{ low: 'photos/', high: 'photos0' }]);
    expect(filterOf({ minSize: 1 }).keyRanges).toEqual([{ low: '' }]);
  });
});

describe('glob semantics (patterns relative to the catalog prefix)', () => {
  it.each<[string, string, boolean]>([
    // * does not cross /, may be empty
    ['*', 'a.jpg', true],
    ['*', 'a/b.jpg', false],
    ['*', '', true],
    ['*.jpg', 'x.jpg', true],
    ['*.jpg', 'dir/x.jpg', false],
    ['*.jpg', 'x.jpeg', false],
    ['*.jpg', 'x.JPG', false], // case-sensitive
    ['photos/*', 'photos/a', true],
    ['photos/*', 'photos/', true], // the folder marker
    ['photos/*', 'photos/a/', false], // a deeper folder marker
    ['photos/*', 'photos/a/b', false],
    ['a*b', 'axxb', true],
    ['a*b', 'ax/xb', false],
    // ** crosses /
    ['**', 'a/b/c', true],
    ['**', '', true],
    ['**/*.jpg', 'x.jpg', true],
    ['**/*.jpg', 'a/b/c/x.jpg', true],
    ['**/*.jpg', 'a/b/c/x.jpg/', false],
    ['photos/**', 'photos/a/b', true],
    ['photos/**', 'photos/', true],
    ['photos/**', 'photos', false],
    ['photos/**', 'photos-old/a', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/bb', false],
    ['a/**/b', 'ab', false],
    ['**/', 'a/b/', true],
    ['**/', 'a/b', false],
    ['*/', 'a/', true],
    ['*/', 'a/b/', false],
    // ? is one character other than /
    ['?', 'a', true],
    ['?', 'ab', false],
    ['?', '/', false],
    ['?', '', false],
    ['?', '😀', true], // one code point, though two UTF-16 units
    ['??', '😀', false],
    ['a?c', 'a/c', false],
    // sets
    ['[abc]x', 'bx', true],
    ['[abc]x', 'dx', false],
    ['[!abc]x', 'dx', true],
    ['[!abc]x', 'ax', false],
    ['[^abc]x', 'dx', true],
    ['[!abc]x', '/x', false], // a set never matches /
    ['a[ -~]b', 'a/b', false],
    ['a[ -~]b', 'a.b', true],
    ['[a-c]', 'b', true],
    ['[[:digit:]]*', '7up', true],
    ['[[:digit:]]*', 'x7', false],
    ['[[:alpha:][:digit:]]', '5', true],
    ['[]]', ']', true],
    ['[!]]', ']', false],
    ['[a-]', '-', true],
    ['[\\]]', ']', true],
    ['[é-ü]', 'ö', true],
    ['[😀]', '😀', true],
    // braces
    ['{a,b}/*.txt', 'b/x.txt', true],
    ['{a,b}/*.txt', 'c/x.txt', false],
    ['*.{jpg,png}', 'x.png', true],
    ['{a,{b,c}}', 'c', true],
    ['{,x}y', 'y', true],
    ['{photos/**,*.jpg}', 'photos/a/b', true],
    ['{photos/**,*.jpg}', 'x.jpg', true],
    ['{photos/**,*.jpg}', 'a/x.jpg', false],
    ['a{1..10}', 'a10', true],
    ['a{1..10}', 'a11', false],
    ['a{01..10}', 'a05', true],
    ['a{01..10}', 'a5', false],
    ['a{1..9..2}', 'a3', true],
    ['a{1..9..2}', 'a4', false],
    ['{c..a}', 'b', true],
    ['{a}', '{a}', true], // no comma: literal, as in bash
    ['{a}', 'a', false],
    // dotfiles and dot segments are ordinary keys
    ['*', '.git', true],
    ['**', '.git/config', true],
    ['.git/**', '.git/objects/ab', true],
    ['**/*', 'a/./b', true],
    ['**/*', 'a/../b', true],
    ['a/*/b', 'a/../b', true],
    ['**/.*', 'a/.hidden', true],
    // literal characters, byte for byte
    ['x+y', 'x+y', true],
    ['x+y', 'xxy', false],
    ['a%20b', 'a%20b', true],
    ['a%20b', 'a b', false],
    ['foo bar/*', 'foo bar/x', true],
    ['ümlaut/*.png', 'ümlaut/a.png', true],
    ['ümlaut/*.png', 'u\u0308mlaut/a.png', false], // no Unicode normalization
    ['a//b/*', 'a//b/c', true],
    ['a//b/*', 'a/b/c', false],
    ['dir/', 'dir/', true],
    ['dir/', 'dir', false],
    ['(1).jpg', '(1).jpg', true],
    ['a|b', 'a|b', true],
    ['a|b', 'a', false],
    ['@(a)', '@(a)', true],
    ['"a"', '"a"', true],
    ['./a', './a', true],
    ['./a', 'a', false],
    ['a.b', 'axb', false],
    ['$x^', '$x^', true],
    ['\\!x', '!x', true],
    ['a!', 'a!', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['a\\?', 'a?', true],
    ['a\\\\b', 'a\\b', true],
    ['a\\{b\\}', 'a{b}', true],
    ['a\\/b', 'a/b', true],
    ['**/x', 'a\nb/x', true], // newlines are ordinary
    ['a?b', 'a\nb', true],
    ['*', 'tab\there', true],
    ['\u0001*', '\u0001x', true],
  ])('%j selects %j: %s', (glob, key, expected) => {
    expect(selects(glob, key)).toBe(expected);
    expect(selects(glob, key, 'photos/')).toBe(expected);
    expect(selects(glob, key, 'dir with space/ü+%/')).toBe(expected);
  });

  it('matches only keys under the catalog prefix, patterns relative to it', () => {
    const filter = filterOf({ include: '2024/**' }, 'photos/');
    const at = (key: string): boolean => matches(filter, { key, size: 1, lastModified: T0 });
    expect(at('photos/2024/a.jpg')).toBe(true);
    expect(at('2024/a.jpg')).toBe(false);
    expect(at('other/photos/2024/a.jpg')).toBe(false);
    const everything = filterOf({ minSize: 0 }, 'photos/');
    expect(matches(everything, { key: 'photos/x', size: 1, lastModified: T0 })).toBe(true);
    expect(matches(everything, { key: 'photosx', size: 1, lastModified: T0 })).toBe(false);
  });

  it('escapes the catalog prefix', () => {
    const filter = filterOf({ include: '*' }, 'a.b+c*d(e)[f]{g}|h^$\\/');
    expect(matches(filter, { key: 'a.b+c*d(e)[f]{g}|h^$\\/x', size: 1, lastModified: T0 })).toBe(true);
    expect(matches(filter, { key: 'aXb+c*d(e)[f]{g}|h^$\\/x', size: 1, lastModified: T0 })).toBe(false);
  });

  it('an exclude wins over an include; no include means everything', () => {
    const both = filterOf({ include: 'photos/**', exclude: ['**/*.tmp', 'photos/private/**'] });
    const at = (key: string): boolean => matches(both, { key, size: 1, lastModified: T0 });
    expect(at('photos/a.jpg')).toBe(true);
    expect(at('photos/a.tmp')).toBe(false);
    expect(at('photos/private/a.jpg')).toBe(false);
    expect(at('videos/a.mp4')).toBe(false);
    const excludeOnly = filterOf({ exclude: '**/*.tmp' });
    expect(matches(excludeOnly, { key: 'videos/a.mp4', size: 1, lastModified: T0 })).toBe(true);
    expect(matches(excludeOnly, { key: 'videos/a.tmp', size: 1, lastModified: T0 })).toBe(false);
    const same = filterOf({ include: 'x', exclude: 'x' });
    expect(matches(same, { key: 'x', size: 1, lastModified: T0 })).toBe(false);
  });

  it('any include selects (several includes are OR-ed)', () => {
    const filter = filterOf({ include: ['a/**', 'b/*.jpg'] });
    const at = (key: string): boolean => matches(filter, { key, size: 1, lastModified: T0 });
    expect([at('a/x'), at('b/x.jpg'), at('b/x.png'), at('c/x')]).toEqual([true, true, false, false]);
  });

  it('undefined filter selects everything', () => {
    expect(matches(undefined, { key: 'anything', size: 0, lastModified: T0 })).toBe(true);
  });

  it.each<[string, RegExp]>([
    ['', /--include "": a pattern cannot be empty/],
    ['!*.tmp', /--include "!\*\.tmp": a leading ! does not negate here: use --exclude "\*\.tmp"/],
    ['[abc', /unmatched \[/],
    ['a[', /unmatched \[/],
    ['[]', /unmatched \[/],
    ['a]', /unmatched \]/],
    ['{a,b', /unmatched \{/],
    ['a}', /unmatched \}/],
    ['{a,b}}', /unmatched \}/],
    ['[z-a]', /the range z-a is reversed/],
    ['[[:letters:]]', /unknown character class \[:letters:\]/],
    ['[/]', /never matches \//],
    ['a\\', /lone \\/],
    ['[a\\', /lone \\|unmatched \[/],
    ['**.jpg', /\*\* must be a whole path segment/],
    ['a**', /\*\* must be a whole path segment/],
    ['photos/**x', /\*\* must be a whole path segment/],
    ['***', /\*\* must be a whole path segment/],
    ['a/***/b', /\*\* must be a whole path segment/],
    ['{1..1000}', /more than 256 alternatives/],
    ['{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}', /more than 256 alternatives/],
    ['{1..5..0}', /step/],
    ['a\u0000b', /NUL/],
  ])('refuses the malformed glob %j', (glob, message) => {
    expect(() => parseFilter({ include: glob }, '')).toThrow(UsageError);
    expect(() => parseFilter({ include: glob }, '')).toThrow(message);
    expect(() => parseFilter({ exclude: glob }, '')).toThrow(/^--exclude /);
  });
});

describe('sizes', () => {
  const at = (filter: ObjectFilter, size: number): boolean => matches(filter, { key: 'k', size, lastModified: T0 });

  it('are bytes, inclusive on both ends', () => {
    const filter = filterOf({ minSize: '1KiB', maxSize: '10MiB' });
    expect(filter.minSize).toBe(1024);
    expect(filter.maxSize).toBe(10 * 1024 * 1024);
    expect([1023, 1024, 1025].map((s) => at(filter, s))).toEqual([false, true, true]);
    expect([10 * 1024 * 1024 - 1, 10 * 1024 * 1024, 10 * 1024 * 1024 + 1].map((s) => at(filter, s))).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('accept one bound alone, equal bounds and zero', () => {
    expect([0, 1, 5e12].map((s) => at(filterOf({ minSize: '1' }), s))).toEqual([false, true, true]);
    expect([0, 1].map((s) => at(filterOf({ maxSize: '0' }), s))).toEqual([true, false]);
    expect([99, 100, 101].map((s) => at(filterOf({ minSize: '100', maxSize: '100' }), s))).toEqual([false, true, false]);
    expect(filterOf({ minSize: '500KB', maxSize: 1_000_000 })).toMatchObject({ minSize: 500_000, maxSize: 1_000_000 });
  });

  it('refuse min > max and unparsable sizes, naming the flag', () => {
    expect(() => parseFilter({ minSize: '10MiB', maxSize: '1MiB' }, '')).toThrow(
      /--min-size 10MiB \(10485760 bytes\) is larger than --max-size 1MiB \(1048576 bytes\)/,
    );
    expect(() => parseFilter({ minSize: 'ten' }, '')).toThrow(/--min-size expects a size/);
    expect(() => parseFilter({ maxSize: '-1' }, '')).toThrow(/--max-size expects a size/);
    expect(() => parseFilter({ maxSize: -1 }, '')).toThrow(UsageError);
    expect(() => parseFilter({ maxSize: 1.5 }, '')).toThrow(/--max-size/);
  });
});

describe('dates (UTC)', () => {
  it.each([
    ['2024-01-01', '2024-01-01T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2024-01-01T12:00:00Z', '2024-01-01T12:00:00.000Z'],
    ['2024-01-01T12:00:00.5Z', '2024-01-01T12:00:00.500Z'],
    ['2024-01-01T12:00:00.123Z', '2024-01-01T12:00:00.123Z'],
    ['2024-01-01T12:00:00+02:00', '2024-01-01T10:00:00.000Z'],
    ['2024-01-01T01:00:00+02:00', '2023-12-31T23:00:00.000Z'],
    ['2024-01-01T23:30:00-05:30', '2024-01-02T05:00:00.000Z'],
    ['2024-01-01T12:00:00+00:00', '2024-01-01T12:00:00.000Z'],
    ['0099-01-01', '0099-01-01T00:00:00.000Z'],
    [' 2024-01-01 ', '2024-01-01T00:00:00.000Z'],
  ])('%j -> %s', (text, iso) => {
    expect(parseUtcDate(text, '--modified-after')).toBe(iso);
  });

  it.each([
    '2024-1-1', '2024/01/01', '01/02/2024', '2024-13-01', '2023-02-29', '2024-04-31', '2024-01-00',
    '2024-01-01T24:00:00Z', '2024-01-01T12:60:00Z', '2024-01-01T12:00:60Z', '2024-01-01T12:00Z',
    '2024-01-01 12:00:00Z', '2024-01-01t12:00:00z', '2024-01-01T12:00:00.1234Z', '2024-01-01T12:00:00+2',
    '2024-01-01T12:00:00+0200', '2024-01-01T12:00:00+24:00', '2024-01-01Z', 'yesterday', '1704067200', '',
    '0000-01-01T00:00:00+01:00',
  ])('refuses %j', (text) => {
    expect(() => parseUtcDate(text, '--modified-before')).toThrow(UsageError);
    expect(() => parseUtcDate(text, '--modified-before')).toThrow(/^--modified-before /);
  });

  it('refuses a time without a zone, saying why', () => {
    expect(() => parseUtcDate('2024-01-01T12:00:00', '--modified-after')).toThrow(
      /--modified-after "2024-01-01T12:00:00" has no time zone: add Z for UTC or an offset/,
    );
  });

  it('after is inclusive, before exclusive', () => {
    const filter = filterOf({ modifiedAfter: '2024-01-01', modifiedBefore: '2024-02-01T00:00:00+01:00' });
    expect(filter.modifiedAfter).toBe('2024-01-01T00:00:00.000Z');
    expect(filter.modifiedBefore).toBe('2024-01-31T23:00:00.000Z');
    const at = (lastModified: string): boolean => matches(filter, { key: 'k', size: 1, lastModified });
    expect(at('2023-12-31T23:59:59.999Z')).toBe(false);
    expect(at('2024-01-01T00:00:00.000Z')).toBe(true);
    expect(at('2024-01-01T00:00:00Z')).toBe(true);
    expect(at('2024-01-31T22:59:59.999Z')).toBe(true);
    expect(at('2024-01-31T23:00:00.000Z')).toBe(false);
    expect(at('not a date')).toBe(false);
  });

  it('refuses after >= before, naming both flags', () => {
    expect(() => parseFilter({ modifiedAfter: '2024-02-01', modifiedBefore: '2024-01-01' }, '')).toThrow(
      /--modified-after 2024-02-01 must be earlier than --modified-before 2024-01-01/,
    );
    expect(() => parseFilter({ modifiedAfter: '2024-01-01', modifiedBefore: '2024-01-01T00:00:00Z' }, '')).toThrow(
      UsageError,
    );
    expect(() => parseFilter({ modifiedAfter: 'soon' }, '')).toThrow(/--modified-after expects a date/);
  });
});

describe('key ranges (byte order)', () => {
  it.each<[string, string | undefined]>([
    ['a/', 'a0'],
    ['photos/2024/', 'photos/20240'],
    ['', undefined],
    ['a', 'b'],
    ['é', 'ê'], // C3 A9 -> C3 AA
    ['\u007f', '\u0080'], // 7F -> C2 80: the byte length changes
    ['\u07ff', '\u0800'], // DF BF -> E0 A0 80 (not the invalid DF C0)
    ['\ud7ff', '\ue000'], // the surrogate block is skipped
    ['\uffff', '\u{10000}'],
    ['😀', '😁'],
    ['a\u{10ffff}', 'b'], // F4 8F BF BF, the largest, carries
    ['\u{10ffff}\u{10ffff}', undefined],
  ])('the keys starting with %j end before %j', (prefix, high) => {
    expect(prefixUpperBound(prefix)).toBe(high);
    if (high !== undefined) {
      expect(Buffer.from(high, 'utf8').toString('utf8')).toBe(high); // a valid string
      expect(byteCompare(prefix, high)).toBeLessThan(0);
    }
  });

  it('a prefix range holds exactly the keys with that prefix, keys sorting before / included', () => {
    const range = prefixRange('a/');
    const keys = ['a', 'a!', 'a-', 'a.', 'a.b', 'a/', 'a//', 'a/\u{10ffff}', 'a0', 'a/b', 'a\u0000', 'b', 'a~', 'A/'];
    for (const key of keys) expect(inKeyRange(key, range)).toBe(key.startsWith('a/'));
  });

  it('compareKeys is UTF-8 byte order, unlike JavaScript string order', () => {
    expect('\uffff' < '😀').toBe(false); // UTF-16: FFFF > D83D
    expect(compareKeys('\uffff', '😀')).toBe(-1); // UTF-8: EF BF BF < F0 9F 98 80
    const keys = generatedKeys(400, 7);
    for (let i = 0; i + 1 < keys.length; i++) {
      expect(Math.sign(compareKeys(keys[i]!, keys[i + 1]!))).toBe(Math.sign(byteCompare(keys[i]!, keys[i + 1]!)));
    }
    expect(compareKeys('a', 'a')).toBe(0);
    expect(compareKeys('a', 'ab')).toBe(-1);
  });

  it('merges overlapping, touching and contained ranges', () => {
    expect(
      mergeKeyRanges([
        prefixRange('b/'),
        prefixRange('a/x/'),
        prefixRange('a/'),
        { low: 'c', high: 'd' },
        { low: 'd', high: 'e' },
        { low: 'x' },
        { low: 'y', high: 'z' },
      ]),
    ).toEqual([
      { low: 'a/', high: 'a0' },
      { low: 'b/', high: 'b0' },
      { low: 'c', high: 'e' },
      { low: 'x' },
    ]);
    expect(mergeKeyRanges([])).toEqual([]);
  });

  it('gives several ranges for includes and brace alternatives with different literal prefixes', () => {
    const filter = filterOf({ include: ['{2023,2024}/**', 'raw/*.cr2', 'raw/x/**'] }, 'photos/');
    expect(filter.keyRanges).toEqual([
      { low: 'photos/2023/', high: 'photos/20230' },
      { low: 'photos/2024/', high: 'photos/20240' },
      { low: 'photos/raw/', high: 'photos/raw0' },
    ]);
    expect(filterOf({ include: ['photos/2024-*.jpg'] }).keyRanges).toEqual([
      { low: 'photos/2024-', high: 'photos/2024.' },
    ]);
    expect(filterOf({ include: ['*/x', 'a/**'] }).keyRanges).toEqual([{ low: '' }]);
    expect(filterOf({ include: ['[ab]/**'] }, 'p/').keyRanges).toEqual([{ low: 'p/', high: 'p0' }]);
  });
});

/** The regular expression constructs the compiler may emit (glob.ts), checked token by token. */
function unsupportedConstructs(source: string): string[] {
  const problems: string[] = [];
  if (!source.startsWith('^') || !source.endsWith('$')) problems.push('not anchored');
  const body = Array.from(source.slice(1, -1));
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const char = body[i]!;
    const rest = body.slice(i).join('');
    if (char === '\\') {
      const escape = /^\\u[0-9a-f]{4}/.exec(rest);
      if (escape) {
        const code = parseInt(escape[0].slice(2), 16);
        if (!(code < 0x20 || code === 0x7f)) problems.push(escape[0]);
        i += 5;
      } else if ('^$\\.*+?()[]{}|'.includes(body[i + 1] ?? 'x')) {
        i++;
      } else {
        problems.push(`\\${body[i + 1]}`);
        i++;
      }
    } else if (rest.startsWith('(?:')) {
      depth++;
      i += 2;
    } else if (char === ')') {
      depth--;
      if (body[i + 1] === '?') i++;
    } else if (char === '[') {
      // A set: [^/], or literal characters, x-y ranges and the escapes \\ \] \[ \^ \- ; never [: [. [=
      let j = i + 1;
      if (body[j] === '^') j++;
      for (; j < body.length && body[j] !== ']'; j++) {
        if (body[j] === '\\') {
          const next = body.slice(j).join('');
          if (/^\\u[0-9a-f]{4}/.test(next)) j += 5;
          else if ('\\][^-'.includes(body[j + 1]!)) j++;
          else problems.push(`set escape \\${body[j + 1]}`);
        } else if (body[j] === '[') {
          problems.push('unescaped [ in a set');
        }
      }
      if (body[j] !== ']') problems.push('unclosed set');
      i = j;
      if (body[i + 1] === '*') i++;
    } else if (char === '.') {
      if (body[i + 1] !== '*') problems.push('. without *');
      i++;
    } else if (char === '|') {
      if (depth === 0) problems.push('| outside a group');
    } else if ('^$*+?(){}]'.includes(char)) {
      problems.push(`bare ${char}`);
    }
  }
  if (depth !== 0) problems.push('unbalanced groups');
  return problems;
}

describe('the SQL description agrees with matches', () => {
  const keys = generatedKeys(300, 42);

  it('emits only the constructs verified on both JavaScript and PostgreSQL', () => {
    for (const prefix of PREFIXES) {
      for (const glob of PATTERNS) {
        const [pattern] = filterOf({ include: glob }, prefix).include;
        expect(unsupportedConstructs(pattern!.regex), `${prefix} ${glob}: ${pattern!.regex}`).toEqual([]);
        expect(() => new RegExp(pattern!.regex, REGEX_FLAGS)).not.toThrow();
      }
    }
    expect(unsupportedConstructs('^(?=a)b$')).not.toEqual([]);
    expect(unsupportedConstructs('^a+?$')).not.toEqual([]);
  });

  it('on every generated key, for every pattern and prefix, with ranges sound', () => {
    let selected = 0;
    let checked = 0;
    const problems: string[] = [];
    for (const prefix of PREFIXES) {
      const rows = [...keys.map((key) => prefix + key), prefix.slice(0, -1), `${prefix.slice(0, -1)}.x`, 'zzz/a'].map(
        (key, i): FilterCandidate => ({ key, size: i * 37, lastModified: new Date(Date.UTC(2024, 0, 1 + (i % 60))).toISOString() }),
      );
      for (const glob of PATTERNS) {
        for (const flags of [{ include: glob }, { exclude: glob }, { include: ['**', glob], exclude: '**/*.tmp' }]) {
          const filter = parseFilter(flags, prefix)!;
          for (const row of rows) {
            const expected = matches(filter, row);
            const where = `${JSON.stringify(flags)} under ${JSON.stringify(prefix)} on ${JSON.stringify(row.key)}`;
            if (selectsLikeSql(filter, row) !== expected) problems.push(`disagree: ${where}`);
            if (expected && !inFilterRanges(filter, row.key)) problems.push(`outside keyRanges: ${where}`);
            if (expected) selected++;
            checked++;
          }
        }
        // Each include's own ranges hold every key it matches.
        const [pattern] = parseFilter({ include: glob }, prefix)!.include;
        const regex = new RegExp(pattern!.regex, REGEX_FLAGS);
        for (const row of rows) {
          if (regex.test(row.key) && !pattern!.ranges.some((range) => inKeyRange(row.key, range))) {
            problems.push(`outside its ranges: ${glob} under ${JSON.stringify(prefix)} on ${JSON.stringify(row.key)}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(100_000);
    expect(selected).toBeGreaterThan(checked / 10); // the generated keys exercise both outcomes
  });

  it('with size and time bounds too', () => {
    const filter = filterOf({
      include: ['**/*.jpg', 'a/**'],
      exclude: 'a/b/**',
      minSize: '100',
      maxSize: '5000',
      modifiedAfter: '2024-01-10',
      modifiedBefore: '2024-02-01T00:00:00+02:00',
    });
    let selected = 0;
    keys.forEach((key, i) => {
      const row = { key, size: (i * 101) % 7000, lastModified: new Date(Date.UTC(2024, 0, 1, i % 24 * 31)).toISOString() };
      expect(selectsLikeSql(filter, row), key).toBe(matches(filter, row));
      if (matches(filter, row)) selected++;
    });
    expect(selected).toBeGreaterThan(0);
  });

  it('and with picomatch wherever picomatch is not known to differ (see glob.ts)', () => {
    // picomatch 4 with dot: true; posix: true so [!a] negates; no extglobs; * never matches a trailing /.
    const options = { dot: true, posix: true, noextglob: true, strictSlashes: true, windows: false, debug: true };
    // Known differences: brace ranges, sets holding / or \, escapes, ( ) (a regex group there), and keys with
    // . or .. or empty segments, newlines (its ** uses . without the s flag) or astral characters (its ? is
    // one UTF-16 unit).
    const comparable = PATTERNS.filter((glob) => !/\.\.|\\|\[ -~\]|\{a\}|^a\{1\.\.|\[\uE000|\(/.test(glob));
    const comparableKeys = keys.filter(
      (key) => !key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..') &&
        !/[\n\u{10000}-\u{10ffff}]/u.test(key),
    );
    expect(comparable.length).toBeGreaterThan(40);
    expect(comparableKeys.length).toBeGreaterThan(100);
    const differences: string[] = [];
    for (const glob of comparable) {
      const theirs = picomatch.makeRe(glob, options);
      const ours = filterOf({ include: glob });
      for (const key of comparableKeys) {
        if (matches(ours, { key, size: 1, lastModified: T0 }) !== theirs.test(key)) differences.push(`${glob} on ${JSON.stringify(key)}`);
      }
    }
    expect(differences).toEqual([]);
  });
});

describe('on SQLite (in memory), as the state store will run it', () => {
  it('key ranges on the BINARY index, a regexp() function and text bounds select what matches selects', () => {
    const db = new Database(':memory:');
    try {
      const cache = new Map<string, RegExp>();
      db.function('regexp', { deterministic: true }, (pattern, key) => {
        let regex = cache.get(pattern as string);
        if (!regex) cache.set(pattern as string, (regex = new RegExp(pattern as string, REGEX_FLAGS)));
        return regex.test(key as string) ? 1 : 0;
      });
      db.exec('CREATE TABLE objects (key TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, last_modified TEXT NOT NULL)');
      const insert = db.prepare('INSERT INTO objects VALUES (?, ?, ?)');
      const rows: FilterCandidate[] = [];
      for (const prefix of PREFIXES) {
        generatedKeys(150, 9).forEach((key, i) => {
          const row = { key: prefix + key, size: (i * 997) % 5000, lastModified: new Date(Date.UTC(2024, 0, 1 + (i % 40), i % 24)).toISOString() };
          if (rows.some((r) => r.key === row.key)) return;
          rows.push(row);
          insert.run(row.key, row.size, row.lastModified);
        });
      }
      const select = (filter: ObjectFilter): string[] => {
        const params: unknown[] = [];
        const where: string[] = [];
        where.push(
          `(${filter.keyRanges
            .map((range) => {
              params.push(range.low);
              if (range.high === undefined) return 'key >= ?';
              params.push(range.high);
              return '(key >= ? AND key < ?)';
            })
            .join(' OR ')})`,
        );
        if (filter.include.length > 0) {
          where.push(`(${filter.include.map((p) => (params.push(p.regex), 'key REGEXP ?')).join(' OR ')})`);
        }
        for (const p of filter.exclude) where.push((params.push(p.regex), 'NOT (key REGEXP ?)'));
        if (filter.minSize !== undefined) where.push((params.push(filter.minSize), 'size >= ?'));
        if (filter.maxSize !== undefined) where.push((params.push(filter.maxSize), 'size <= ?'));
        if (filter.modifiedAfter !== undefined) where.push((params.push(filter.modifiedAfter), 'last_modified >= ?'));
        if (filter.modifiedBefore !== undefined) where.push((params.push(filter.modifiedBefore), 'last_modified < ?'));
        const sql = `SELECT key FROM objects WHERE ${where.join(' AND ')} ORDER BY key`;
        return (db.prepare(sql).all(...params) as Array<{ key: string }>).map((row) => row.key);
      };
      let selected = 0;
      for (const prefix of PREFIXES) {
        for (const glob of PATTERNS) {
          for (const flags of [
            { include: glob },
            { include: [glob, '{a,b}/**'], exclude: '**/*.tmp', minSize: '100', maxSize: '4000' },
            { exclude: glob, modifiedAfter: '2024-01-05T06:00:00+02:00', modifiedBefore: '2024-02-01' },
          ]) {
            const filter = parseFilter(flags, prefix)!;
            const expected = rows
              .filter((row) => matches(filter, row))
              .map((row) => row.key)
              .sort(byteCompare);
            const actual = select(filter);
            expect(actual, `${JSON.stringify(flags)} under ${JSON.stringify(prefix)}`).toEqual(expected);
            selected += actual.length;
          }
        }
      }
      expect(selected).toBeGreaterThan(1000);
    } finally {
      db.close();
    }
  });
});

describe('compileGlob', () => {
  it('gives each brace alternative its literal prefix', () => {
    expect(compileGlob('photos/{2023,2024}/*.jpg', '--include')).toEqual([
      { source: 'photos/2023/[^/]*\\.jpg', literalPrefix: 'photos/2023/' },
      { source: 'photos/2024/[^/]*\\.jpg', literalPrefix: 'photos/2024/' },
    ]);
    expect(compileGlob('a\\*b/c?', '--include')).toEqual([{ source: 'a\\*b/c[^/]', literalPrefix: 'a*b/c' }]);
  });

  it('renders sets without /, with escapes for the characters special inside a set', () => {
    expect(compileGlob('[ -~]', '--include')[0]!.source).toBe('[ -.0-~]');
    expect(compileGlob('[!a-c]', '--include')[0]!.source).toBe('[^a-c/]');
    expect(compileGlob('[]^\\\\-]', '--include')[0]!.source).toBe('[\\-\\\\-\\^]');
    expect(compileGlob('[[:space:]]', '--include')[0]!.source).toBe('[\\u0009-\\u000d ]');
    expect(compileGlob('[[]', '--include')[0]!.source).toBe('[\\[]');
  });
});

// The same agreement against a real PostgreSQL, when one is given (the lead's and CI's fleet setup):
// S3MIGRATE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres npx vitest run test/unit/object-filter.test.ts
const pgUrl = process.env.S3MIGRATE_TEST_PG_URL;
describe.skipIf(!pgUrl)('on PostgreSQL (S3MIGRATE_TEST_PG_URL)', () => {
  it('regexes and key ranges select exactly what matches selects', async () => {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    try {
      const keys = generatedKeys(300, 42);
      let compared = 0;
      let selected = 0;
      for (const prefix of PREFIXES) {
        const rows = [...keys.map((key) => prefix + key), prefix.slice(0, -1), `${prefix.slice(0, -1)}.x`];
        for (const glob of PATTERNS) {
          const filter = filterOf({ include: glob }, prefix);
          const [pattern] = filter.include;
          const ranges = filter.keyRanges;
          const result = await client.query<{ key: string }>(
            `SELECT k AS key FROM unnest($1::text[]) AS k
              WHERE k ~ $2
                AND EXISTS (SELECT 1 FROM jsonb_to_recordset($3::jsonb) AS r(low text, high text)
                             WHERE k >= r.low COLLATE "C" AND (r.high IS NULL OR k < r.high COLLATE "C"))`,
            [rows, pattern!.regex, JSON.stringify(ranges)],
          );
          const expected = rows.filter((key) => matches(filter, { key, size: 1, lastModified: T0 })).sort();
          expect(result.rows.map((row) => row.key).sort(), `${prefix} ${glob}: ${pattern!.regex}`).toEqual(expected);
          compared += rows.length;
          selected += result.rows.length;
        }
      }
      expect(compared).toBeGreaterThan(50_000);
      expect(selected).toBeGreaterThan(compared / 20);
    } finally {
      await client.end();
    }
  });
});
