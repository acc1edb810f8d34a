// The pure parts of object fidelity: which tags are asked for (and when no request is made at all),
// which storage class is written, and that a refused class dooms the run.
import type { Tag } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { objectWrite, sourceTags, storageClassFor } from '../../src/copy/object-write.js';
import { doomsRun } from '../../src/copy/retry-policy.js';
import type { Fidelity, TransferJob, TransferSettings } from '../../src/copy/transfer-settings.js';
import { classifyError } from '../../src/s3/errors.js';
import { describeS3Failure } from '../../src/s3/describe-failure.js';
import { StorageClassRefusedError } from '../../src/copy/object-write.js';

const TAGS: Tag[] = [{ Key: 'a', Value: '1' }];

function settings(fidelity: Fidelity | undefined, tags: Tag[] = TAGS): { settings: TransferSettings; asked: string[] } {
  const asked: string[] = [];
  const source = { getTags: async (key: string) => (asked.push(key), tags) };
  return { settings: { source, fidelity } as unknown as TransferSettings, asked };
}
const job = { sourceKey: 'k', destKey: 'k', size: 1, etag: null } as TransferJob;
const signal = new AbortController().signal;

describe('sourceTags', () => {
  it('copy (the default): asks only when the source reported tags, or said nothing at all', async () => {
    for (const fidelity of [undefined, { tags: 'copy', probePrefix: '' } as Fidelity]) {
      const { settings: s, asked } = settings(fidelity);
      expect(await sourceTags(s, job, {}, signal)).toBeUndefined();
      expect(await sourceTags(s, job, { tagCount: 0 }, signal)).toBeUndefined();
      expect(asked).toEqual([]); // untagged objects: no request
      expect(await sourceTags(s, job, { tagCount: 1 }, signal)).toEqual(TAGS);
      // A resumed multipart copy that read nothing from the source in this attempt.
      expect(await sourceTags(s, job, undefined, signal)).toEqual(TAGS);
      expect(asked).toEqual(['k', 'k']);
    }
  });

  it('always asks every object; none never; an empty tag set is no tags', async () => {
    const always = settings({ tags: 'always', probePrefix: '' }, []);
    expect(await sourceTags(always.settings, job, {}, signal)).toBeUndefined();
    expect(always.asked).toEqual(['k']);
    const none = settings({ tags: 'none', probePrefix: '' });
    expect(await sourceTags(none.settings, job, { tagCount: 5 }, signal)).toBeUndefined();
    expect(none.asked).toEqual([]);
  });
});

describe('storage class', () => {
  it('the class asked; keep: the source’s own, none reported -> the destination’s default', async () => {
    const asked = settings({ tags: 'none', probePrefix: '', storageClass: 'STANDARD_IA' }).settings;
    const keep = settings({ tags: 'none', probePrefix: '', storageClass: 'keep' }).settings;
    const unset = settings({ tags: 'none', probePrefix: '' }).settings;
    expect(storageClassFor(asked, { storageClass: 'GLACIER' })).toBe('STANDARD_IA');
    expect(storageClassFor(keep, { storageClass: 'GLACIER' })).toBe('GLACIER');
    expect(storageClassFor(keep, {})).toBeUndefined();
    expect(storageClassFor(unset, { storageClass: 'GLACIER' })).toBeUndefined();
    expect(await objectWrite(keep, job, { storageClass: 'ONEZONE_IA' }, signal)).toEqual({ storageClass: 'ONEZONE_IA' });
    expect(await objectWrite(unset, job, {}, signal)).toEqual({});
  });

  it('a refused class dooms the run, and says which class in one sentence', () => {
    const error = new StorageClassRefusedError('GLACIER', false, Object.assign(new Error(''), { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } }));
    const classified = classifyError(error);
    expect(classified).toMatchObject({ code: 'InvalidStorageClass', status: 400, kind: 'fatal' });
    expect(doomsRun(classified, 0, 100)).toBe(true);
    const fatal = describeS3Failure(error, { side: 'dest', bucket: 'dst', credentialSource: 'DEST_AWS_ACCESS_KEY_ID' });
    expect(fatal.message).toBe(
      'The destination bucket "dst" refused the storage class "GLACIER" (--storage-class; InvalidArgument (HTTP 400)): it does not offer ' +
        'that class. Choose one it offers with --storage-class, or leave the flag out for its default class.',
    );
  });
});
