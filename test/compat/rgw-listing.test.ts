// Listing on Ceph RGW, end to end with the built CLI: keys XML cannot carry (control characters) and keys
// that path handling likes to rewrite (`.` and `..` segments, `//`, trailing spaces), with `+`, `%2B`, `%`,
// spaces and unicode, are cataloged with EncodingType=url (decoded by us), in parts (keys sorting below '/'
// and above ASCII at the part boundaries), copied to another RGW user's bucket, and arrive byte for byte
// under the same keys. A plain listing (no EncodingType) is the reference: on RGW it carries these keys as
// they are.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRgw, type RgwHandle, type RgwUser } from '../servers/rgw.js';
import { runCli } from '../support/cli.js';
import { bytes, eachLimit, listKeys, readObject, readRows, seed, sha256, tempDir, type SeedObject } from '../support/copy-fixtures.js';
import { startRequestProxy, type RequestProxy } from '../support/request-proxy.js';
import { createS3Client } from '../../src/s3/client.js';
import { leanPathOf } from '../../src/s3/lean-path.js';
import { listObjectsPage, listPages } from '../../src/s3/list-pages.js';

const USER_A = { uid: 'listing-source', access: 'LISTINGSOURCEKEY0001', secret: 'listing-source-secret-000000000000000000' };
const USER_B = { uid: 'listing-dest', access: 'LISTINGDESTKEY000001', secret: 'listing-dest-secret-00000000000000000000' };

let rgw: RgwHandle;
let userA: RgwUser;
let userB: RgwUser;
let clientA: S3Client;
let clientB: S3Client;
let proxy: RequestProxy;
let work: Awaited<ReturnType<typeof tempDir>>;

const client = (user: RgwUser): S3Client =>
  new S3Client({
    endpoint: rgw.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });

const TRICKY = [
  'ctl\u0001char.txt',
  'tab\there',
  'new\nline',
  'carriage\rreturn',
  'bell\u0007/and\u001fus',
  'dots/./single',
  'dots/../double',
  './lead-dot',
  '../lead-dots',
  'end/.',
  'end/..',
  'a//b',
  '//lead-slashes',
  'trailing space ',
  'trailing spaces   ',
  'dir with space /x',
  'plus+sign',
  'literal%2Bescape',
  '100%',
  '%',
  'space and+plus',
  'ünïcødé/日本語',
  'emoji 😀/key',
  // Around '/' and above ASCII, where parts meet.
  'p-a/x',
  'p.b',
  'p/',
  'p/x',
  'p0',
  'é/x',
  '\uFF01wide',
  '😀',
];
const CORPUS: SeedObject[] = [
  ...TRICKY.map((key, n) => ({ key, body: key.endsWith('/') ? Buffer.alloc(0) : bytes(50 + n) })),
  ...Array.from({ length: 300 }, (_, i) => ({ key: `bulk-${String(i % 12).padStart(2, '0')}/obj-${i}`, body: bytes(i % 7) })),
];

beforeAll(async () => {
  [rgw, work] = await Promise.all([startRgw(), tempDir('rgw-listing')]);
  userA = await rgw.createUser(USER_A.uid, USER_A.access, USER_A.secret);
  userB = await rgw.createUser(USER_B.uid, USER_B.access, USER_B.secret);
  clientA = client(userA);
  clientB = client(userB);
  await clientA.send(new CreateBucketCommand({ Bucket: 'keys-src' }));
  await clientB.send(new CreateBucketCommand({ Bucket: 'keys-dst' }));
  await seed(clientA, 'keys-src', CORPUS);
  proxy = await startRequestProxy(rgw.endpoint);
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  for (const c of [clientA, clientB]) c?.destroy();
  await rgw?.stop();
  await work?.remove();
});

const env = (): Record<string, string> => ({
  SOURCE_ENDPOINT: proxy.endpoint,
  SOURCE_AWS_ACCESS_KEY_ID: userA.accessKeyId,
  SOURCE_AWS_SECRET_ACCESS_KEY: userA.secretAccessKey,
  SOURCE_AWS_REGION: 'us-east-1',
  DEST_ENDPOINT: rgw.endpoint,
  DEST_AWS_ACCESS_KEY_ID: userB.accessKeyId,
  DEST_AWS_SECRET_ACCESS_KEY: userB.secretAccessKey,
  DEST_AWS_REGION: 'us-east-1',
});

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('listing and copying awkward keys on RGW', () => {
  let reference: string[];

  it('RGW stores every key as put, and its plain listing carries them all', async () => {
    reference = await listKeys(clientA, 'keys-src');
    expect([...reference].sort(byteOrder)).toEqual(CORPUS.map((o) => o.key).sort(byteOrder));
    // RGW lists in byte order.
    expect(reference).toEqual([...reference].sort(byteOrder));
  });

  it('answers EncodingType=url encoded; our decoding gives the same keys, across pages of 2', async () => {
    const answer = await listObjectsPage(clientA, { bucket: 'keys-src', prefix: '', maxKeys: 5 });
    expect(answer.encoded).toBe(true);
    const keys: string[] = [];
    for await (const page of listPages(clientA, { bucket: 'keys-src', prefix: '', startAfter: '', pageSize: 2 })) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual(reference);
    // Resumed after any key (StartAfter is a decoded key, sent as the SDK encodes query values).
    for (const after of TRICKY) {
      const next = await listObjectsPage(clientA, { bucket: 'keys-src', prefix: '', startAfter: after, maxKeys: 1 });
      expect(next.objects[0]?.key, `after ${JSON.stringify(after)}`).toBe(reference[reference.indexOf(after) + 1]);
    }
  });

  it('the lean path answers as the SDK does: URL-encoded keys, prefixes, tokens, across pages', async () => {
    const config = (leanPath?: false) => ({
      side: 'source' as const,
      endpoint: rgw.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      checksumMode: 'when-required' as const,
      credentials: { accessKeyId: userA.accessKeyId, secretAccessKey: userA.secretAccessKey },
      credentialSource: 'test',
      ...(leanPath === false ? { leanPath } : {}),
    });
    const lean = createS3Client(config(), { maxSockets: 4 });
    const sdk = createS3Client(config(false), { maxSockets: 4 });
    expect(leanPathOf(lean)).toBeDefined();
    try {
      for (const request of [
        { prefix: '', maxKeys: 7 },
        { prefix: '', delimiter: '/' },
        { prefix: 'p', delimiter: '/', maxKeys: 3 },
        { prefix: 'dots/', startAfter: 'dots/./single' },
      ]) {
        let token: string | undefined;
        let tokenSdk: string | undefined;
        do {
          const [a, b] = await Promise.all([
            listObjectsPage(lean, { bucket: 'keys-src', ...request, continuationToken: token }),
            listObjectsPage(sdk, { bucket: 'keys-src', ...request, continuationToken: tokenSdk }),
          ]);
          expect(a, JSON.stringify(request)).toEqual(b);
          expect(a.encoded).toBe(true);
          token = a.nextToken;
          tokenSdk = b.nextToken;
        } while (token !== undefined);
      }
    } finally {
      lean.destroy();
      sdk.destroy();
    }
  });

  it.each([1, 8])('catalog --list-concurrency %i records exactly the keys of the plain listing', async (concurrency) => {
    const state = work.file(`catalog-${concurrency}.db`);
    proxy.reset();
    const result = await runCli(['catalog', '--from', 's3://keys-src', '--state', state, '--list-concurrency', String(concurrency)], { env: env() });
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    const rows = readRows(state);
    expect(rows.map((row) => row.key).sort(byteOrder)).toEqual([...reference].sort(byteOrder));
    const lists = proxy.log().filter((entry) => entry.op === 'ListObjectsV2');
    expect(lists.every((entry) => new URLSearchParams(entry.query).get('encoding-type') === 'url')).toBe(true);
    if (concurrency > 1) expect(lists.filter((entry) => new URLSearchParams(entry.query).has('delimiter')).length).toBeGreaterThan(0);
  });

  it('copy puts every object at the same key, byte for byte', async () => {
    const state = work.file('catalog-8.db');
    const result = await runCli(['copy', '--to', 's3://keys-dst', '--state', state], { env: env() });
    expect({ code: result.code, stderr: result.stderr }).toMatchObject({ code: 0 });
    const copied = await listKeys(clientB, 'keys-dst');
    expect(copied).toEqual(reference);
    await eachLimit(CORPUS, 8, async (object) => {
      expect(sha256(await readObject(clientB, 'keys-dst', object.key)), JSON.stringify(object.key)).toBe(sha256(object.body));
    });
    expect(readRows(state).every((row) => row.status === 'done')).toBe(true);
  });
});
