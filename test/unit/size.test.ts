import { describe, expect, it } from 'vitest';
import { parseSize } from '../../src/config/size.js';
import { UsageError } from '../../src/errors.js';

describe('parseSize', () => {
  it.each([
    ['1048576', 1_048_576],
    ['0', 0],
    ['512B', 512],
    ['8MiB', 8 * 1024 ** 2],
    ['8mib', 8 * 1024 ** 2],
    ['8 MiB', 8 * 1024 ** 2],
    [' 16MiB ', 16 * 1024 ** 2],
    ['512KiB', 512 * 1024],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['2TiB', 2 * 1024 ** 4],
    ['500KB', 500_000],
    ['5MB', 5_000_000],
    ['1GB', 1_000_000_000],
    ['64k', 64 * 1024],
    ['8M', 8 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['0.5KiB', 512],
  ])('%j -> %d bytes', (text, bytes) => {
    expect(parseSize(text, '--part-size')).toBe(bytes);
  });

  it('rounds fractional bytes to a whole number', () => {
    expect(Number.isInteger(parseSize('1.3KiB', '--part-size'))).toBe(true);
    expect(parseSize('1.3KiB', '--part-size')).toBe(Math.round(1.3 * 1024));
  });

  it.each(['', 'abc', '-1', '-8MiB', '5XB', '1.2.3', 'MiB', '8 Mi B', '1e6', '0x10', '8MiBs'])('refuses %j', (text) => {
    expect(() => parseSize(text, '--part-size')).toThrow(UsageError);
    expect(() => parseSize(text, '--part-size')).toThrow(/--part-size expects a size such as 8MiB/);
  });
});
