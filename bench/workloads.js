// Deterministic benchmark workloads: the same keys and bytes every run (seeded, no Math.random).
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';
import { startHelper } from './measure.js';

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

export function workloads({ w2Objects = 64, w3Size }) {
  return {
    W1: {
      title: '5,000 x 10 KiB across 10 prefixes',
      objects: Array.from({ length: 5000 }, (_, i) => ({ key: `p${i % 10}/obj-${String(i).padStart(5, '0')}.bin`, size: 10 * 1024 })),
    },
    // 64 objects (4 GiB), not 16 or 32: at 16 the process start-ups and the catalog were ~15 % of
    // s3migrate's wall time, at 32 still ~8 % (0.6 s of 7.4: a separate catalog process, then the copy's
    // start, against rclone listing inline), and a run of rclone lasted ~6 s, too short to compare rates.
    W2: {
      title: `${w2Objects} x 64 MiB`,
      objects: Array.from({ length: w2Objects }, (_, i) => ({ key: `big/part-${String(i).padStart(3, '0')}.bin`, size: 64 * MiB })),
    },
    // Objects whose source ETag is a multipart one (`-8`): seeded as multipart uploads in 8 MiB parts, and
    // read through bench/etag-proxy.js, since s3rver itself gives multipart uploads a whole-object MD5.
    // 64 objects (4 GiB) as W2, for the same reason: at 16 (1 GiB) the catalog process and the copy's
    // start (~0.5 CPU s together) were a fifth of the CPU per GiB the issue bounds.
    W2m: {
      title: '64 x 64 MiB, multipart source ETags (8 MiB parts)',
      objects: Array.from({ length: 64 }, (_, i) => ({ key: `mp/part-${String(i).padStart(2, '0')}.bin`, size: 64 * MiB })),
      partSize: 8 * MiB,
      multipartSourceEtags: true,
    },
    W3: {
      title: `1 x ${(w3Size / 1024 / MiB).toFixed(w3Size % (1024 * MiB) ? 2 : 0)} GiB`,
      objects: [{ key: 'huge/one.bin', size: w3Size }],
    },
  };
}

/**
 * Puts a workload's objects into a bucket; large ones stream through a multipart upload in 64 MiB pieces.
 * With `partSize`, every object goes as a multipart upload in parts of that size; resolves a Map from each
 * such object's ETag as the server gave it (no quotes) to its S3 multipart form `<md5 of part md5s>-N`.
 */
export async function seed(client, bucket, objects, { partSize } = {}) {
  const limit = pLimit(objects.length > 100 ? 32 : 4);
  const multipartEtags = new Map();
  await Promise.all(
    objects.map((object, index) =>
      limit(async () => {
        if (partSize) {
          const body = fill(Buffer.alloc(object.size), index + 1);
          const digests = [];
          for (let offset = 0; offset < body.length; offset += partSize) {
            digests.push(createHash('md5').update(body.subarray(offset, offset + partSize)).digest());
          }
          const upload = new Upload({ client, params: { Bucket: bucket, Key: object.key, Body: body }, partSize, queueSize: 2 });
          const answer = await upload.done();
          const fake = `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
          multipartEtags.set(answer.ETag.replace(/"/g, ''), fake);
          return;
        }
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
  return multipartEtags;
}

/** Starts bench/etag-proxy.js in front of the s3rver on `targetPort`: { endpoint, pid, stop }. */
export async function startEtagProxy(targetPort, multipartEtags) {
  const script = fileURLToPath(new URL('./etag-proxy.js', import.meta.url));
  const pairs = [...multipartEtags].map(([real, fake]) => `${real}=${fake}`).join(',');
  const { child, info } = await startHelper([script, String(targetPort), pairs]);
  return {
    endpoint: `http://127.0.0.1:${info.port}`,
    pid: info.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
