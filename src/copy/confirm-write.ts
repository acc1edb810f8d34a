import type { CopyResult } from '../state/types.js';
import { judgeWrite, type SentBytes } from './evidence.js';
import { IntegrityError, NoEvidenceError } from './integrity.js';
import type { TransferSettings } from './transfer-settings.js';

/**
 * Turns the destination's answer into a done result, or throws. When the answer itself proves nothing
 * (no ETag, as Ceph RGW's CompleteMultipartUpload; or an encrypted one), HeadObject is asked; an
 * encrypted destination is evidence only where the server is proven to check Content-MD5 (on every part,
 * for a multipart upload: `sent.contentMd5Sent`).
 */
export async function confirmWrite(
  settings: TransferSettings,
  destKey: string,
  sent: SentBytes,
  answer: { etag?: string; encrypted: boolean },
  signal: AbortSignal,
): Promise<CopyResult> {
  // An encrypted answer to a write that carried Content-MD5 is judged by the server's proven check at
  // once: a HeadObject would tell nothing more.
  let judgement = judgeWrite(sent, answer, answer.encrypted && sent.contentMd5Sent ? await settings.contentMd5Checked() : false);
  let encrypted = answer.encrypted;
  if (judgement.verdict === 'unknown') {
    const head = await settings.dest.head(destKey, signal);
    if (!head) throw new IntegrityError('IntegrityMismatch', 'the destination has no object at the key right after our write');
    encrypted ||= head.encrypted;
    const checked = head.encrypted && sent.contentMd5Sent ? await settings.contentMd5Checked() : false;
    judgement = judgeWrite(sent, head, checked);
  }
  switch (judgement.verdict) {
    case 'proven':
      return { destKey, destEtag: judgement.destEtag, evidence: judgement.evidence };
    case 'mismatch':
      throw new IntegrityError('IntegrityMismatch', `${judgement.reason}${checksumHint(settings)}`);
    default:
      throw new NoEvidenceError(
        `the destination accepted the object but nothing proves it holds the source's bytes (${judgement.reason}); ` +
          'run `s3migrate verify --deep` to compare the content, or report the server',
        encrypted,
        sent.contentMd5Sent === true,
      );
  }
}

/** Names the setting when a mismatch looks like the SDK's aws-chunked framing stored verbatim. */
export function checksumHint(settings: TransferSettings): string {
  return settings.destChecksumMode === 'when-supported'
    ? '; the SDK checksums (when-supported) may have framed the body: set DEST_CHECKSUM_MODE=when-required (or --dest-checksum when-required)'
    : '';
}
