import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { HashingStream, readWhole } from '../../src/copy/integrity.js';
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

describe('readWhole', () => {
  const data = Buffer.from(Array.from({ length: 25_000 }, (_, i) => (i * 17) % 253));
  const pieces = (bytes: Buffer, chunk: number): Buffer[] => {
    const out = [];
    for (let i = 0; i < bytes.length; i += chunk) out.push(bytes.subarray(i, i + chunk));
    return out;
  };
  const read = (bytes: Buffer, options: Parameters<typeof readWhole>[1], chunk = 4096) =>
    readWhole(Readable.from(pieces(bytes, chunk)), options).then(
      (whole) => ({ whole, error: undefined }),
      (error: Error) => ({ whole: undefined, error }),
    );

  it('reads every byte into one buffer, hashing only when asked, and counts the bytes', async () => {
    let counted = 0;
    const plain = await read(data, { expectedSize: data.length, wholeMd5: false, onBytes: (n) => (counted += n) });
    expect(plain.whole!.bytes.equals(data)).toBe(true);
    expect(plain.whole!.md5).toBeUndefined();
    expect(counted).toBe(data.length);
    const hashed = await read(data, { expectedSize: data.length, wholeMd5: true }, 3333);
    expect(hashed.whole!.md5).toBe(md5(data));
    const checked = await read(data, { expectedSize: data.length, expectedMd5: md5(data), wholeMd5: false });
    expect(checked.whole!.md5).toBe(md5(data));
  });

  it('fails a short body, a long one, and bytes that do not hash to the source ETag', async () => {
    expect((await read(data.subarray(0, 20_000), { expectedSize: data.length, wholeMd5: false })).error?.name).toBe('TruncatedBody');
    expect((await read(data, { expectedSize: data.length - 1, wholeMd5: false })).error?.name).toBe('TruncatedBody');
    const wrong = await read(data, { expectedSize: data.length, expectedMd5: md5(Buffer.from('other')), wholeMd5: false });
    expect(wrong.error?.name).toBe('IntegrityMismatch');
  });

  it('passes the body\'s own error on, and fails a body closed before its end', async () => {
    const failing = new Readable({ read() {} });
    const reading = readWhole(failing, { expectedSize: 10, wholeMd5: false }).catch((error: Error) => error);
    failing.push(Buffer.alloc(4));
    failing.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    expect(await reading).toMatchObject({ code: 'ECONNRESET' });
    const cut = new Readable({ read() {} });
    const cutReading = readWhole(cut, { expectedSize: 10, wholeMd5: false }).catch((error: Error) => error);
    cut.push(Buffer.alloc(4));
    cut.destroy();
    expect(await cutReading).toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('handles a 0-byte object', async () => {
    const { whole } = await read(Buffer.alloc(0), { expectedSize: 0, wholeMd5: true });
    expect(whole!.bytes.length).toBe(0);
    expect(whole!.md5).toBe(md5(Buffer.alloc(0)));
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
