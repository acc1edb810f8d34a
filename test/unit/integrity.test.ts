import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { HashingStream } from '../../src/copy/integrity.js';
import { isPlainMd5, multipartEtag, normalizeEtag as unquote } from '../../src/s3/etag.js';

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Pushes `data` through a HashingStream in `chunk`-byte pieces; returns what came out and the error. */
async function run(data: Buffer, chunk: number, options: ConstructorParameters<typeof HashingStream>[0]) {
  const hasher = new HashingStream(options);
  const out: Buffer[] = [];
  const pieces = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  let error: Error | undefined;
  try {
    await pipeline(
      Readable.from(pieces),
      hasher,
      new Writable({
        write(piece: Buffer, _encoding, callback) {
          out.push(piece);
          callback();
        },
      }),
    );
  } catch (caught) {
    error = caught as Error;
  }
  return { hasher, out: Buffer.concat(out), error };
}

describe('HashingStream', () => {
  const data = Buffer.from(Array.from({ length: 25_000 }, (_, i) => (i * 31) % 251));

  it('passes every byte through and hashes the whole', async () => {
    const { hasher, out, error } = await run(data, 4096, { expectedSize: data.length, wholeMd5: true });
    expect(error).toBeUndefined();
    expect(out.equals(data)).toBe(true);
    expect(hasher.md5).toBe(md5(data));
    expect(hasher.multipartEtag).toBeUndefined();
  });

  it('computes the multipart ETag from parts cut at partSize, whatever the chunking', async () => {
    const parts = [data.subarray(0, 10_000), data.subarray(10_000, 20_000), data.subarray(20_000)];
    const expected = multipartEtag(parts.map((p) => createHash('md5').update(p).digest()));
    for (const chunk of [1000, 3333, 10_000, 25_000]) {
      const { hasher } = await run(data, chunk, { expectedSize: data.length, partSize: 10_000, wholeMd5: false });
      expect(hasher.multipartEtag).toBe(expected);
      expect(expected.endsWith('-3')).toBe(true);
    }
  });

  it('fails a short body and holds back nothing it should not', async () => {
    const { error, out } = await run(data.subarray(0, 20_000), 4096, { expectedSize: data.length, wholeMd5: true });
    expect(error?.name).toBe('TruncatedBody');
    expect(out.length).toBeLessThan(data.length);
  });

  it('withholds the last chunk when the bytes do not hash to the source ETag', async () => {
    const { error, out } = await run(data, 4096, { expectedSize: data.length, expectedMd5: md5(Buffer.from('other')), wholeMd5: false });
    expect(error?.name).toBe('IntegrityMismatch');
    // The consumer (the upload) never received a complete body.
    expect(out.length).toBeLessThan(data.length);
  });

  it('fails a body longer than announced', async () => {
    const { error } = await run(data, 4096, { expectedSize: data.length - 1, wholeMd5: true });
    expect(error?.name).toBe('TruncatedBody');
  });

  it('handles a 0-byte object', async () => {
    const { hasher, error } = await run(Buffer.alloc(0), 1, { expectedSize: 0, wholeMd5: true });
    expect(error).toBeUndefined();
    expect(hasher.md5).toBe(md5(Buffer.alloc(0)));
  });
});

describe('ETag helpers', () => {
  it('recognises plain MD5 ETags only', () => {
    expect(isPlainMd5('"d41d8cd98f00b204e9800998ecf8427e"')).toBe(true);
    expect(isPlainMd5('"d41d8cd98f00b204e9800998ecf8427e-3"')).toBe(false);
    expect(isPlainMd5(undefined)).toBe(false);
    expect(unquote('W/"abc"')).toBe('abc');
  });
});
