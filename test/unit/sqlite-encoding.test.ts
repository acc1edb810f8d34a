// The compact row (schema migration 3): the SQL that encodes (the migration) and decodes (the views) each
// value agrees exactly with its JavaScript twin (the store's boundary), and the round trip is exact.
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEtag, encodeEtag, encodeStorageClass, fromMs, toMs } from '../../src/state/sqlite/encoding.js';
import { etagBlobSql, etagSql, isoSql, msSql, storageClassSql } from '../../src/state/sqlite/schema.js';

const db = new Database(':memory:');
afterAll(() => db.close());

describe('the compact encodings', () => {
  it('keep times as milliseconds and show them exactly as toISOString does', () => {
    const statement = db.prepare(`SELECT ${isoSql('@ms')} AS iso, ${msSql('@iso')} AS ms`);
    const samples = [0, 1, 999, 1000, 1704067200000, 1704067199999, 253402300799999, -1, -86400001];
    let seed = 42;
    for (let i = 0; i < 20000; i += 1) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      samples.push(Math.floor((seed / 2 ** 31) * 4.1e12) - 1e11);
    }
    for (const ms of samples) {
      const iso = new Date(ms).toISOString();
      expect(statement.get({ ms, iso }), iso).toEqual({ iso, ms });
      expect(toMs(iso)).toBe(ms);
      expect(fromMs(ms)).toBe(iso);
    }
    // Forms near the canonical one: each read as Date.parse reads it (or kept as text when it reads none).
    for (const text of [
      '2024-02-29T00:00:00.000Z', '2023-02-29T00:00:00.000Z', '2024-01-31T23:59:59.999Z', '2024-04-31T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z', '2024-01-01T23:60:00.000Z', '2024-13-01T00:00:00.000Z', '2024-00-10T00:00:00.000Z',
      '0999-01-01T00:00:00.000Z', '0050-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000z', '2024-01-01 00:00:00.000Z',
      '2024-01-01T00:00:00,000Z', '2024-1a-01T00:00:00.000Z', '+02024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.00Z',
    ]) {
      const parsed = Date.parse(text);
      expect(toMs(text), text).toBe(Number.isNaN(parsed) ? text : parsed);
    }
    // Text that is no date stays as it is, both ways.
    expect(statement.get({ ms: 'yesterday', iso: 'yesterday' })).toEqual({ iso: 'yesterday', ms: 'yesterday' });
    expect(toMs('yesterday')).toBe('yesterday');
    expect(fromMs('yesterday')).toBe('yesterday');
    expect(fromMs(null)).toBeNull();
  });

  it('store the usual ETags in 16 bytes (and the part count), any other ETag as its text, and give back the exact text', () => {
    const encode = db.prepare(`SELECT ${etagBlobSql('@etag')} AS stored`);
    const decode = db.prepare(`SELECT ${etagSql('@stored')} AS etag`);
    const cases: Array<[string, number | 'text']> = [
      ['"0123456789abcdef0123456789abcdef"', 16],
      ['"00000000000000000000000000000000"', 16],
      ['"0123456789abcdef0123456789abcdef-12"', 19],
      ['"0123456789abcdef0123456789abcdef-1"', 18],
      ['"0123456789abcdef0123456789abcdef-"', 'text'],
      ['"0123456789abcdef0123456789abcdef-1x2"', 'text'],
      ['"0123456789ABCDEF0123456789abcdef"', 'text'],
      ['0123456789abcdef0123456789abcdef', 'text'],
      ['W/"0123456789abcdef0123456789abcdef"', 'text'],
      ['"abc"', 'text'],
      ['', 'text'],
    ];
    for (const [etag, form] of cases) {
      const { stored } = encode.get({ etag }) as { stored: Buffer | string };
      const js = encodeEtag(etag);
      if (form === 'text') {
        expect(stored, etag).toBe(etag);
        expect(js, etag).toBe(etag);
      } else {
        expect(Buffer.isBuffer(stored) && stored.length, etag).toBe(form);
        expect(Buffer.isBuffer(js) && js.equals(stored as Buffer), etag).toBe(true);
      }
      expect((decode.get({ stored }) as { etag: string }).etag, etag).toBe(etag);
      expect(decodeEtag(js), etag).toBe(etag);
    }
    expect(encodeEtag(undefined)).toBeNull();
    expect(decodeEtag(null)).toBeNull();
  });

  it('encode ETags of 34 characters exactly as the SQL does, whatever their characters', () => {
    const encode = db.prepare(`SELECT ${etagBlobSql('@etag')} AS stored`);
    const alphabet = '0123456789abcdefABCDEFg/ -"';
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5000; i += 1) {
      const hex = Array.from({ length: 32 }, () => alphabet[next(i % 4 === 0 ? alphabet.length : 16)]).join('');
      const etag = next(8) === 0 ? `x${hex}"` : `"${hex}"`;
      const { stored } = encode.get({ etag }) as { stored: Buffer | string };
      const js = encodeEtag(etag);
      if (typeof stored === 'string') expect(js, etag).toBe(stored);
      else expect(Buffer.isBuffer(js) && js.equals(stored), etag).toBe(true);
    }
  });

  it('leave STANDARD out, and tell a missing storage class from it', () => {
    const decode = db.prepare(`SELECT ${storageClassSql('@stored')} AS value`);
    for (const value of ['STANDARD', 'GLACIER', 'STANDARD_IA', null]) {
      const stored = encodeStorageClass(value);
      expect((decode.get({ stored }) as { value: string | null }).value).toBe(value);
    }
    expect(encodeStorageClass('STANDARD')).toBeNull();
  });
});
