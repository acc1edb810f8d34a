// Deterministic benchmark workloads: the same keys and bytes every run (seeded, no Math.random).
import { PassThrough } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';

const MiB = 1024 * 1024;

/** xorshift32: deterministic bytes without a dependency. */
function fill(buffer, seed) {
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= buffer.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buffer.writeUInt32LE(x >>> 0, i);
  }
  return buffer;
}

export function workloads({ w3Size }) {
  return {
    W1: {
      title: '5,000 x 10 KiB across 10 prefixes',
      objects: Array.from({ length: 5000 }, (_, i) => ({ key: `p${i % 10}/obj-${String(i).padStart(5, '0')}.bin`, size: 10 * 1024 })),
    },
    W2: {
      title: '16 x 64 MiB',
      objects: Array.from({ length: 16 }, (_, i) => ({ key: `big/part-${String(i).padStart(2, '0')}.bin`, size: 64 * MiB })),
    },
    W3: {
      title: `1 x ${(w3Size / 1024 / MiB).toFixed(w3Size % (1024 * MiB) ? 2 : 0)} GiB`,
      objects: [{ key: 'huge/one.bin', size: w3Size }],
    },
  };
}

/** Puts a workload's objects into a bucket; large ones stream through a multipart upload in 64 MiB pieces. */
export async function seed(client, bucket, objects) {
  const limit = pLimit(objects.length > 100 ? 32 : 4);
  await Promise.all(
    objects.map((object, index) =>
      limit(async () => {
        if (object.size <= 64 * MiB) {
          const body = fill(Buffer.alloc(object.size), index + 1);
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: object.key, Body: body }));
          return;
        }
        const stream = new PassThrough();
        const upload = new Upload({ client, params: { Bucket: bucket, Key: object.key, Body: stream }, partSize: 64 * MiB, queueSize: 2 });
        const done = upload.done();
        for (let offset = 0, n = 0; offset < object.size; offset += 64 * MiB, n += 1) {
          const chunk = fill(Buffer.alloc(Math.min(64 * MiB, object.size - offset)), index * 1000 + n + 1);
          if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve));
        }
        stream.end();
        await done;
      }),
    ),
  );
}
