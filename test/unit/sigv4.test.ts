// The lean path's SigV4 signer (src/s3/sigv4.ts) against the SDK's own signer for S3, request for request:
// the same headers out (x-amz-date, x-amz-security-token, x-amz-content-sha256, authorization) for GETs
// and PUTs with every kind of header, query and key the lean path sends.
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { encodeKey } from '../../src/s3/lean-path.js';
import { SigV4Signer } from '../../src/s3/sigv4.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

interface Case {
  name: string;
  method: 'GET' | 'PUT';
  key: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: unknown;
}

const md5 = 'rL0Y20zC+Fzt72VPzMSk2A==';
const CASES: Case[] = [
  { name: 'plain GET', method: 'GET', key: 'a/b.bin', query: { 'x-id': 'GetObject' }, headers: { 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } },
  {
    name: 'ranged GET with If-Match',
    method: 'GET',
    key: 'unicode/ünïcødé-日本語-😀',
    query: { 'x-id': 'GetObject' },
    headers: { 'if-match': '"0123456789abcdef0123456789abcdef"', range: 'bytes=0-99', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  },
  {
    name: 'PUT with every copied header, metadata with blanks, tabs and non-ASCII, unsigned payload',
    method: 'PUT',
    key: "tilde~star*quote'paren()/bang!dollar$amp&comma,semi;eq=at@colon:",
    query: { 'x-id': 'PutObject' },
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-encoding': 'identity',
      'content-disposition': 'attachment; filename="x y.txt"',
      'content-language': 'de-CH',
      'cache-control': 'max-age=3600, must-revalidate',
      expires: 'Mon, 03 Feb 2031 04:05:06 GMT',
      'x-amz-meta-color': 'blue',
      'x-amz-meta-multi-word': ' a b  c\t d ',
      'x-amz-meta-empty': '',
      'x-amz-meta-latin': 'Ã¼ber',
      'content-length': '1234',
      'content-md5': md5,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      expect: '100-continue',
      'user-agent': 'aws-sdk-js/3 ua/2.1',
      'x-amz-user-agent': 'aws-sdk-js/3',
    },
  },
  {
    name: 'UploadPart query (uploadId with + / =)',
    method: 'PUT',
    key: 'mp/part',
    query: { partNumber: '7', uploadId: 'a+b/c=d~e f', 'x-id': 'UploadPart' },
    headers: { 'content-length': '5', 'content-md5': md5, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  },
  {
    name: 'ListObjectsV2 query (prefix, start-after and a token with blanks, + / = and unicode)',
    method: 'GET',
    key: '',
    query: { 'list-type': '2', prefix: 'dir/with space+plus&amp', 'max-keys': '1000', 'start-after': 'dir/ünï 😀', 'continuation-token': '1a+b/c==' },
    headers: { 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  },
  { name: 'PUT of a Buffer without Content-MD5: hashed', method: 'PUT', key: 'hash me', query: { 'x-id': 'PutObject' }, headers: { 'content-length': '5' }, body: Buffer.from('hello') },
  { name: 'PUT of a stream: UNSIGNED-PAYLOAD', method: 'PUT', key: 'stream', query: { 'x-id': 'PutObject' }, headers: { 'content-length': '5' }, body: { pipe: () => undefined } },
];

async function sdkSigner(client: S3Client, region: string) {
  const config = client.config as unknown as { signer: (scheme: object) => Promise<{ sign: (request: object, options: object) => Promise<{ headers: Record<string, string> }> }> };
  return config.signer({ name: 'sigv4', signingName: 's3', signingRegion: region, properties: {} });
}

describe('SigV4Signer signs as the SDK signs S3 requests', () => {
  for (const credentials of [
    { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'secret/with+chars=', sessionToken: 'token-ABC/+= long' },
  ]) {
    for (const region of ['us-east-1', 'eu-west-3']) {
      it(`${credentials.sessionToken ? 'session credentials' : 'static keys'}, ${region}`, async () => {
        const client = new S3Client({ region, credentials, endpoint: 'http://127.0.0.1:9000', forcePathStyle: true });
        const sdk = await sdkSigner(client, region);
        const ours = new SigV4Signer(region, 's3');
        for (const date of [new Date('2026-03-04T05:06:07.890Z'), new Date('2026-03-04T23:59:59.999Z'), new Date('2026-03-05T00:00:00.000Z')]) {
          for (const c of CASES) {
            const request = () => ({
              method: c.method,
              protocol: 'http:',
              hostname: '127.0.0.1',
              port: 9000,
              path: `/bucket/${encodeKey(c.key)}`,
              query: { ...c.query },
              headers: { host: '127.0.0.1:9000', ...c.headers },
              body: c.body,
            });
            const expected = await sdk.sign(request(), { signingDate: date, signingRegion: region, signingService: 's3' });
            const mine = request();
            ours.sign(mine, await client.config.credentials(), date.getTime());
            expect(mine.headers, `${c.name} at ${date.toISOString()}`).toEqual(expected.headers);
          }
        }
      });
    }
  }

  it('refuses credentials without keys, as the SDK does', () => {
    const request = { method: 'GET', path: '/b/k', query: {}, headers: {} };
    expect(() => new SigV4Signer('us-east-1', 's3').sign(request, {} as never, Date.now())).toThrow(/credential/);
  });
});
