// Fills a bucket with a deterministic sample corpus for the demo and tests:
// the same seed always yields the same keys, sizes, metadata and bytes.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';

const KiB = 1024;
const MiB = 1024 * KiB;

/** mulberry32: a tiny, fast, seedable PRNG returning floats in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n, width = 4) => String(n).padStart(width, '0');

/**
 * @typedef {object} ObjectSpec
 * @property {string} key
 * @property {number} size bytes
 * @property {string} [contentType]
 * @property {string} [cacheControl]
 * @property {string} [contentDisposition]
 * @property {string} [contentLanguage]
 * @property {Record<string, string>} [metadata]
 * @property {boolean} [text] printable content
 */

/** Kinds of generated objects: [weight, make(index, rand)]. @type {Array<[number, (i: number, r: () => number) => Omit<ObjectSpec, 'size'>]>} */
const KINDS = [
  [40, (i, r) => ({
    key: `photos/${2022 + Math.floor(r() * 3)}/${pad(1 + Math.floor(r() * 12), 2)}/IMG_${pad(i)}.jpg`,
    contentType: 'image/jpeg',
    metadata: { camera: r() < 0.5 ? 'X100V' : 'EOS R6', 'seed-index': String(i) },
  })],
  [25, (i, r) => ({
    key: `logs/app/2024-${pad(1 + Math.floor(r() * 12), 2)}-${pad(1 + Math.floor(r() * 28), 2)}/server-${pad(i)}.log`,
    contentType: 'text/plain; charset=utf-8',
    text: true,
  })],
  [12, (i) => ({
    key: `docs/reports/report-${pad(i)}.pdf`,
    contentType: 'application/pdf',
    contentDisposition: `attachment; filename="report-${pad(i)}.pdf"`,
    contentLanguage: 'en',
  })],
  [10, (i, r) => {
    const [ext, contentType] = r() < 0.5 ? ['json', 'application/json'] : ['csv', 'text/csv'];
    return { key: `data/${ext}/part-${pad(i)}.${ext}`, contentType, text: true };
  }],
  [8, (i, r) => {
    const [ext, contentType] = r() < 0.5 ? ['css', 'text/css'] : ['js', 'text/javascript'];
    return { key: `site/assets/${ext}/bundle-${pad(i)}.${ext}`, contentType, text: true, cacheControl: 'public, max-age=31536000, immutable' };
  }],
  [5, (i) => ({ key: `misc/blob-${pad(i)}.bin` })], // no Content-Type: S3 defaults it
];
const TOTAL_WEIGHT = KINDS.reduce((sum, [w]) => sum + w, 0);

/** Objects present whatever the count: edge cases worth seeing in a migration. */
function fixedObjects(r, large) {
  /** @type {ObjectSpec[]} */
  const fixed = [
    { key: 'photos/', size: 0 }, // "folder" marker as made by consoles
    { key: 'site/index.html', size: 3 * KiB, contentType: 'text/html; charset=utf-8', text: true, cacheControl: 'no-cache' },
    { key: 'site/robots.txt', size: 0, contentType: 'text/plain' },
    { key: 'docs/Résumé final (v2).pdf', size: 48 * KiB, contentType: 'application/pdf' },
    { key: 'docs/a+b = c & 100%.txt', size: 2 * KiB, contentType: 'text/plain', text: true },
  ];
  for (let n = 1; n <= large; n++) {
    // 12-20 MiB: several 8 MiB multipart parts, and not a multiple of the part size.
    const size = 12 * MiB + Math.floor(r() * 8 * MiB);
    fixed.push({ key: `backups/db-2024-${pad(n, 2)}.tar.gz`, size, contentType: 'application/gzip', metadata: { 'backup-kind': 'full' } });
  }
  return fixed;
}

/** Mostly 1-200 KiB, log-uniform (many small, some large); about 1 in 100 empty. */
function pickSize(r) {
  if (r() < 0.01) return 0;
  return Math.round(KiB * Math.exp(r() * Math.log(200)));
}

/** Plans the whole corpus up front so upload order and concurrency cannot change it. */
export function planDemoObjects({ count = 2000, seed = 1, large = 3 } = {}) {
  const r = prng(seed);
  const objects = fixedObjects(r, large).slice(0, count);
  for (let i = 1; objects.length < count; i++) {
    let pick = r() * TOTAL_WEIGHT;
    const [, make] = KINDS.find(([w]) => (pick -= w) < 0) ?? KINDS[0];
    objects.push({ size: pickSize(r), ...make(i, r) });
  }
  // Each object gets its own content seed, drawn from the plan's stream.
  return objects.map((o) => ({ ...o, contentSeed: Math.floor(r() * 2 ** 32) }));
}

/**
 * Deterministic bytes; printable lines for text types so they look sane when opened.
 * @param {{ size: number, contentSeed: number, text?: boolean }} spec
 */
function makeBody({ size, contentSeed, text }) {
  const r = prng(contentSeed);
  const body = Buffer.allocUnsafe(size);
  const words = new Uint32Array(body.buffer, body.byteOffset, Math.floor(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = (r() * 4294967296) >>> 0;
  for (let i = words.length * 4; i < size; i++) body[i] = (r() * 256) >>> 0;
  if (text) {
    for (let i = 0; i < size; i++) body[i] = i % 80 === 79 ? 0x0a : 0x20 + (body[i] % 95);
  }
  return body;
}

/**
 * Puts the sample corpus into an existing bucket.
 * @param {import('@aws-sdk/client-s3').S3Client} client
 * @param {string} bucket
 * @param {{ count?: number, seed?: number, large?: number, concurrency?: number }} [options]
 *   count: total objects (default 2000); large: how many 12-20 MiB objects among them (default 3)
 * @returns {Promise<{ objects: number, bytes: number }>}
 */
export async function seedDemoBucket(client, bucket, { count = 2000, seed = 1, large = 3, concurrency = 16 } = {}) {
  const plan = planDemoObjects({ count, seed, large });
  const limit = pLimit(concurrency);
  await Promise.all(
    plan.map((o) =>
      limit(() =>
        // Body is generated inside the task so only `concurrency` bodies are in memory at once.
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: o.key,
            Body: makeBody(o),
            ContentType: o.contentType,
            CacheControl: o.cacheControl,
            ContentDisposition: o.contentDisposition,
            ContentLanguage: o.contentLanguage,
            Metadata: o.metadata,
          }),
        ),
      ),
    ),
  );
  return { objects: plan.length, bytes: plan.reduce((sum, o) => sum + o.size, 0) };
}
