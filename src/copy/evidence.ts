/**
 * When may a row be marked done? Only on positive evidence that the destination holds the source's bytes.
 * Pure functions; the transfer, crash recovery and verify all judge with them.
 *
 * Accepted evidence:
 * - md5: the destination's plain, unencrypted ETag for our write equals the MD5 of the bytes we sent, and
 *   those bytes are the source's (checked against the source's own MD5 ETag, or hashed as they were read);
 * - multipart-etag: the destination's multipart ETag equals the one computed from the MD5s of the parts we sent;
 * - part-etags: every part's ETag equalled the MD5 of the bytes we sent for it, and the completed object has a
 *   whole-object ETag (servers such as s3rver that do not give the `-N` form), so no better check exists;
 * - content-md5: the destination checked our Content-MD5 itself, on a server proven to refuse a bad digest.
 * Never evidence: a matching size, or an SSE-KMS / SSE-C ETag (they look like MD5s and are not).
 */
import type { Evidence } from '../state/types.js';
import { isMultipartEtag, isPlainMd5, normalizeEtag } from '../s3/etag.js';

/** What we sent to the destination, as far as we know it. */
export interface SentBytes {
  size: number;
  /** Hex MD5 of the whole object's bytes, when computed or vouched for by the source's MD5 ETag. */
  md5?: string;
  /** The multipart ETag of the parts we sent (MD5 of part MD5s + "-N"). */
  multipartEtag?: string;
  /** Every part's ETag equalled the MD5 of its bytes (multipart uploads). */
  partsProven?: boolean;
  /** The write carried Content-MD5 of `md5` (a multipart upload: every part carried its own). */
  contentMd5Sent?: boolean;
}

/** What the destination answered (the write itself, or a HeadObject after it). */
export interface DestinationAnswer {
  etag?: string;
  encrypted: boolean;
  /** Known for a HeadObject answer. */
  size?: number;
}

export type Judgement =
  | { verdict: 'proven'; evidence: Evidence; destEtag?: string }
  | { verdict: 'mismatch'; reason: string }
  /** Nothing in this answer proves or disproves it (no ETag, or an encrypted one). */
  | { verdict: 'unknown'; reason: string };

/**
 * Judges the destination's answer to our write. `contentMd5Checked`: the destination is known to refuse
 * a write whose Content-MD5 does not match (only then is an encrypted destination's acceptance evidence).
 */
export function judgeWrite(sent: SentBytes, answer: DestinationAnswer, contentMd5Checked = false): Judgement {
  const etag = normalizeEtag(answer.etag);
  if (answer.size !== undefined && answer.size !== sent.size) {
    return { verdict: 'mismatch', reason: `the destination holds ${answer.size} bytes, we sent ${sent.size}` };
  }
  if (answer.encrypted) {
    if (sent.contentMd5Sent && contentMd5Checked) return { verdict: 'proven', evidence: 'content-md5', destEtag: etag };
    return {
      verdict: 'unknown',
      reason: 'the destination encrypts with SSE-KMS or SSE-C, so its ETag is not an MD5 of the content',
    };
  }
  if (etag === undefined) return { verdict: 'unknown', reason: 'the destination answered without an ETag' };
  if (sent.md5 !== undefined && etag === sent.md5) return { verdict: 'proven', evidence: 'md5', destEtag: etag };
  if (sent.multipartEtag !== undefined && etag === sent.multipartEtag) {
    return { verdict: 'proven', evidence: 'multipart-etag', destEtag: etag };
  }
  if (isMultipartEtag(etag)) {
    if (sent.multipartEtag !== undefined) {
      return { verdict: 'mismatch', reason: `the destination ETag ${etag} is not the ${sent.multipartEtag} of the parts we sent` };
    }
    return { verdict: 'unknown', reason: `the destination gave a multipart ETag ${etag} for a single write` };
  }
  if (isPlainMd5(etag)) {
    if (sent.md5 !== undefined) {
      return { verdict: 'mismatch', reason: `the destination ETag ${etag} is not the MD5 ${sent.md5} of the bytes we sent` };
    }
    // A whole-object ETag for a multipart upload whose whole MD5 we did not compute: the parts carry the proof.
    if (sent.partsProven) return { verdict: 'proven', evidence: 'part-etags', destEtag: etag };
    return { verdict: 'unknown', reason: `the destination ETag ${etag} cannot be compared with what we computed` };
  }
  return { verdict: 'unknown', reason: `the destination ETag ${etag} is neither an MD5 nor a multipart ETag` };
}

/** Judges one part: UploadPart's ETag against the MD5 of the bytes we sent for it. */
export function judgePart(partMd5: string, answer: DestinationAnswer): Judgement {
  const etag = normalizeEtag(answer.etag);
  if (answer.encrypted) return { verdict: 'unknown', reason: 'encrypted part ETag' };
  if (etag === undefined) return { verdict: 'unknown', reason: 'UploadPart answered without an ETag' };
  if (etag === partMd5) return { verdict: 'proven', evidence: 'md5', destEtag: etag };
  if (isPlainMd5(etag)) return { verdict: 'mismatch', reason: `the part's ETag ${etag} is not the MD5 ${partMd5} of its bytes` };
  return { verdict: 'unknown', reason: `the part's ETag ${etag} is not an MD5` };
}

/** What the catalog knows of a source object. */
export interface CatalogEntry {
  size: number;
  etag: string | null;
}

/**
 * After a crash, a row left in flight may already be at the destination. It is done only when the
 * destination object carries the source's own ETag (a plain MD5 equal to the catalog's, or the same
 * multipart ETag, which means the same part MD5s) with the same size, unencrypted. Anything else, a
 * stale object of the same size included, is copied again.
 */
export function judgeRecovery(
  entry: CatalogEntry,
  head: DestinationAnswer | undefined,
  /** The multipart ETag of the parts a recorded upload sent, all of them (its completion may have landed). */
  uploadedEtag?: string,
): Judgement {
  if (!head) return { verdict: 'unknown', reason: 'not at the destination' };
  if (head.size !== entry.size) return { verdict: 'mismatch', reason: `size ${head.size}, the catalog says ${entry.size}` };
  if (head.encrypted) return { verdict: 'unknown', reason: 'encrypted at the destination: its ETag proves nothing' };
  const source = normalizeEtag(entry.etag);
  const dest = normalizeEtag(head.etag);
  if (uploadedEtag !== undefined && dest === uploadedEtag) return { verdict: 'proven', evidence: 'multipart-etag', destEtag: dest };
  if (source === undefined || dest === undefined) return { verdict: 'unknown', reason: 'no ETag to compare' };
  if (source !== dest) {
    return isPlainMd5(source) && isPlainMd5(dest)
      ? { verdict: 'mismatch', reason: `ETag ${dest}, the source's is ${source}` }
      : { verdict: 'unknown', reason: `ETags ${dest} and ${source} cannot be compared` };
  }
  if (isPlainMd5(source)) return { verdict: 'proven', evidence: 'md5', destEtag: dest };
  if (isMultipartEtag(source)) return { verdict: 'proven', evidence: 'multipart-etag', destEtag: dest };
  return { verdict: 'unknown', reason: `ETag ${dest} is neither an MD5 nor a multipart ETag` };
}

/**
 * Is the object a GetObject answered with still the one the catalog recorded? Returns why not, or
 * undefined when it is. Works on every server, whether or not it honours If-Match.
 */
export function sourceChange(entry: CatalogEntry, answer: { etag?: string; objectSize?: number }): string | undefined {
  if (answer.objectSize !== undefined && answer.objectSize !== entry.size) {
    return `the source object is now ${answer.objectSize} bytes, the catalog says ${entry.size}`;
  }
  const cataloged = normalizeEtag(entry.etag);
  const now = normalizeEtag(answer.etag);
  if (cataloged !== undefined && now !== undefined && cataloged !== now) {
    return `the source object's ETag is now ${now}, the catalog says ${cataloged}`;
  }
  return undefined;
}
