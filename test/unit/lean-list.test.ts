// The lean path's ListObjectsV2 reader (parseListAnswer in src/s3/lean-list.ts) against the SDK's own
// deserialiser, page for page: the same keys (entities, character references, blanks at either end,
// awkward characters), sizes, ETags, dates and storage classes, the same IsTruncated and
// NextContinuationToken; plus what only ours does (EncodingType=url pages, refusing what is no listing).
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseListAnswer } from '../../src/s3/lean-list.js';
import { decodeListedKey } from '../../src/s3/list-pages.js';

/** The page as the SDK's shape, from the reader the catalog uses (parseListAnswer). */
interface ListedPage {
  contents: Array<{ key: string; size: number; etag?: string; lastModified?: Date; storageClass?: string }>;
  isTruncated: boolean;
  nextContinuationToken?: string;
}
function parseListing(xml: string): ListedPage {
  const answer = parseListAnswer(xml);
  return {
    contents: answer.objects.map((object) => ({
      // As the catalog reads it: keys of an EncodingType=url page decoded (src/s3/list-pages.ts).
      key: answer.encodingType === 'url' ? decodeListedKey(object.key) : object.key,
      size: object.size,
      etag: object.etag,
      lastModified: new Date(object.lastModified),
      storageClass: object.storageClass,
    })),
    isTruncated: answer.truncated,
    nextContinuationToken: answer.nextToken,
  };
}
import { unescapeXml } from '../../src/s3/lean-path.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The page as the SDK reads it: a client whose "HTTP handler" answers `xml`. */
async function viaSdk(xml: string): Promise<ListedPage> {
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
    requestHandler: {
      handle: async () => ({
        response: { statusCode: 200, headers: { 'content-type': 'application/xml' }, body: Readable.from([Buffer.from(xml)]) },
      }),
    } as never,
  });
  const out = await client.send(new ListObjectsV2Command({ Bucket: 'b' }));
  return {
    contents: (out.Contents ?? []).map((item) => ({
      key: item.Key!,
      size: item.Size ?? 0,
      etag: item.ETag,
      lastModified: item.LastModified,
      storageClass: item.StorageClass,
    })),
    isTruncated: out.IsTruncated === true,
    nextContinuationToken: out.NextContinuationToken,
  };
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';

function entry(key: string, extra = ''): string {
  return (
    `<Contents><Key>${key}</Key><LastModified>2026-01-02T03:04:05.678Z</LastModified>` +
    `<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>` +
    `<Size>10240</Size><Owner><ID>abc</ID><DisplayName>me &amp; you</DisplayName></Owner><StorageClass>STANDARD</StorageClass>${extra}</Contents>`
  );
}

const PAGES: Record<string, string> = {
  'entities and character references in keys': `${HEAD}<Name>b</Name><Prefix></Prefix><KeyCount>6</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${[
    'amp&amp;ersand',
    'lt&lt;gt&gt;quot&quot;apos&apos;',
    'cr&#13;lf&#xA;tab&#9;',
    'hex&#xE9;dec&#233;',
    'double&amp;lt;escaped&amp;amp;',
    'ünïcødé/日本語 😀',
  ]
    .map((key) => entry(key))
    .join('')}</ListBucketResult>`,
  'blanks at either end of a key, and a key of blanks only': `${HEAD}<IsTruncated>false</IsTruncated>${entry('  lead and trail  ')}${entry('   ')}${entry('dir/')}</ListBucketResult>`,
  'a truncated page with its continuation token after the entries, pretty-printed': `${HEAD}\n  <Name>b</Name>\n  <KeyCount>2</KeyCount>\n  <IsTruncated>true</IsTruncated>\n  ${entry(
    'a',
  )}\n  ${entry('b')}\n  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n  <ContinuationToken>prev+token/==</ContinuationToken>\n</ListBucketResult>`,
  'the token before the entries (the field order some servers use)': `${HEAD}<ContinuationToken>x</ContinuationToken><NextContinuationToken>a+b/c=</NextContinuationToken><KeyCount>1</KeyCount><IsTruncated>true</IsTruncated>${entry(
    'k',
  )}</ListBucketResult>`,
  'an empty page': `${HEAD}<Name>b</Name><Prefix>nothing/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`,
  'dates in other forms than toISOString writes, ETags quoted otherwise': `${HEAD}<IsTruncated>false</IsTruncated>${[
    ['no-millis', '2026-01-02T03:04:05Z', '&quot;0123456789abcdef0123456789abcdef&quot;'],
    ['day-31', '2026-01-31T03:04:05.678Z', '&#34;0123456789abcdef0123456789abcdef-2&#34;'],
    ['offset', '2026-01-02T03:04:05.678+02:00', '&quot;odd&amp;etag&quot;'],
    ['leap-day', '2024-02-29T23:59:59.999Z', '&quot;&quot;'],
    ['plain', '2026-01-02T03:04:05.678Z', 'unquoted'],
  ]
    .map(([key, date, etag]) =>
      entry(key!).replace('2026-01-02T03:04:05.678Z', date!).replace('&quot;0123456789abcdef0123456789abcdef&quot;', etag!),
    )
    .join('')}</ListBucketResult>`,
  'zero-byte objects and large sizes': `${HEAD}<IsTruncated>false</IsTruncated>${entry('big').replace('<Size>10240</Size>', '<Size>5497558138880</Size>')}${entry('zero').replace('<Size>10240</Size>', '<Size>0</Size>')}</ListBucketResult>`,
};

describe('parseListing reads a ListObjectsV2 page as the SDK does', () => {
  for (const [name, xml] of Object.entries(PAGES)) {
    it(name, async () => {
      const sdk = await viaSdk(xml);
      expect(parseListing(xml)).toEqual(sdk);
    });
  }

  it('gives every date as toISOString writes it, whatever form the server used', async () => {
    const xml = PAGES['dates in other forms than toISOString writes, ETags quoted otherwise']!;
    const sdk = await viaSdk(xml);
    expect(parseListAnswer(xml).objects.map((object) => object.lastModified)).toEqual(
      sdk.contents.map((object) => object.lastModified!.toISOString()),
    );
  });

  it('reads every key of the entity page right (not only as the SDK does)', () => {
    expect(parseListing(PAGES['entities and character references in keys']!).contents.map((c) => c.key)).toEqual([
      'amp&ersand',
      'lt<gt>quot"apos\'',
      'cr\rlf\ntab\t',
      'hexédecé',
      'double&lt;escaped&amp;',
      'ünïcødé/日本語 😀',
    ]);
  });

  it('keeps blanks: a key of blanks only is a key', () => {
    // The SDK empties a blank-only text that holds a line break; ours keeps every key as S3 wrote it.
    const xml = `${HEAD}<IsTruncated>false</IsTruncated>${entry('&#13;\n ')}</ListBucketResult>`;
    expect(parseListing(xml).contents[0]!.key).toBe('\r\n ');
  });

  it('decodes character references beyond the BMP (the SDK drops them)', () => {
    const xml = `${HEAD}<IsTruncated>false</IsTruncated>${entry('hex&#x1F600;dec&#128512;')}</ListBucketResult>`;
    expect(parseListing(xml).contents[0]!.key).toBe('hex😀dec😀');
  });

  it('decodes keys of an EncodingType=url page (blank as +, + as %2B)', () => {
    const xml = `${HEAD}<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>${entry('dir%2Fwith+space%2Bplus%26amp')}${entry(
      'ctl%01char%0D%E6%97%A5',
    )}<NextContinuationToken>t+/=</NextContinuationToken></ListBucketResult>`;
    const page = parseListing(xml);
    expect(page.contents.map((c) => c.key)).toEqual(['dir/with space+plus&amp', 'ctl\u0001char\r日']);
    expect(page).toMatchObject({ isTruncated: true, nextContinuationToken: 't+/=' });
  });

  it('refuses what is not a listing, and broken listings', () => {
    expect(() => parseListing('')).toThrow(/not a ListBucketResult/);
    expect(() => parseListing('<Error><Code>X</Code></Error>')).toThrow(/not a ListBucketResult/);
    expect(() => parseListing(`${HEAD}<Contents><Key>a</Key>`)).toThrow(/unclosed <Contents>/);
    expect(() => parseListing(`${HEAD}<EncodingType>url</EncodingType>${entry('bad%E6')}</ListBucketResult>`)).toThrow();
  });
});

describe('unescapeXml', () => {
  it('decodes in one pass', () => {
    expect(unescapeXml('&amp;lt; &#x26;amp; &#38;#65; &lt;&gt;&quot;&apos;&amp;')).toBe('&lt; &amp; &#65; <>"\'&');
  });
  it('leaves what is no entity', () => {
    expect(unescapeXml('a & b &unknown; &#xZZ; &#1114112;')).toBe('a & b &unknown; &#xZZ; &#1114112;');
  });
});
