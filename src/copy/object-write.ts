import type { Tag } from '@aws-sdk/client-s3';
import type { ObjectWrite } from '../s3/bucket.js';
import { classifyError } from '../s3/errors.js';
import { tagSide } from '../s3/side.js';
import type { Fidelity, TransferJob, TransferSettings } from './transfer-settings.js';

/**
 * What a write of one object carries besides its bytes, headers and user metadata: its tags (--tags) and
 * storage class (--storage-class), from what the source reported for it (GetObject or HeadObject).
 */

const DEFAULT_FIDELITY: Fidelity = { tags: 'copy', probePrefix: '' };

/** What the source said of the object: x-amz-tagging-count and x-amz-storage-class. */
export interface SourceReport {
  tagCount?: number;
  storageClass?: string;
}

function fidelityOf(settings: TransferSettings): Fidelity {
  return settings.fidelity ?? DEFAULT_FIDELITY;
}

/**
 * The source object's tags to carry. `copy` asks GetObjectTagging only when the source reported tags
 * (`report` undefined: nothing was read from the source in this attempt, so it cannot have said; asked);
 * `always` asks for every object; `none` never. Undefined when there are none to write.
 */
export async function sourceTags(
  settings: TransferSettings,
  job: TransferJob,
  report: SourceReport | undefined,
  signal: AbortSignal,
): Promise<readonly Tag[] | undefined> {
  const mode = fidelityOf(settings).tags;
  if (mode === 'none') return undefined;
  if (mode === 'copy' && report !== undefined && !((report.tagCount ?? 0) > 0)) return undefined;
  let tags: Tag[];
  try {
    tags = await settings.source.getTags(job.sourceKey, signal);
  } catch (error) {
    throw tagSide(error, 'source');
  }
  return tags.length > 0 ? tags : undefined;
}

/** The storage class to write: the one asked, the source's own with `keep` (none reported: the destination's default). */
export function storageClassFor(settings: TransferSettings, report: SourceReport | undefined): string | undefined {
  const asked = fidelityOf(settings).storageClass;
  return asked === 'keep' ? report?.storageClass : asked;
}

/** Tags and storage class of one object's write. */
export async function objectWrite(
  settings: TransferSettings,
  job: TransferJob,
  report: SourceReport | undefined,
  signal: AbortSignal,
): Promise<ObjectWrite> {
  const tags = await sourceTags(settings, job, report, signal);
  const storageClass = storageClassFor(settings, report);
  return { ...(tags ? { tags } : {}), ...(storageClass !== undefined ? { storageClass } : {}) };
}

/**
 * The destination does not offer a storage class: every object would be refused the same way, so the
 * run stops (retry-policy.ts doomsRun) with this one message. Shaped like an S3 error (code, HTTP status).
 */
export class StorageClassRefusedError extends Error {
  readonly code = 'InvalidStorageClass';
  readonly $metadata = { httpStatusCode: 400 };
  readonly s3migrateSide = 'dest';
  constructor(
    readonly storageClass: string,
    keep: boolean,
    cause: unknown,
  ) {
    // Read as "The destination bucket "B" <message>." (describe-failure.ts).
    super(
      `refused the storage class "${storageClass}" (${keep ? "the source object's own, --storage-class keep" : '--storage-class'}; ` +
        `${classifyError(cause).description}): it does not offer that class. Choose one it offers with --storage-class, ` +
        'or leave the flag out for its default class',
    );
    this.name = 'InvalidStorageClass';
  }
}

/**
 * Runs one write that carries `storageClass` and names a refusal of the class as such: AWS answers
 * InvalidStorageClass; Ceph RGW answers InvalidArgument with no message, which could be something else
 * too, so one empty probe object is written with that class alone (once per class and run) to tell.
 */
export async function refusingStorageClass<T>(settings: TransferSettings, storageClass: string | undefined, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (storageClass === undefined) throw error;
    const { code } = classifyError(error);
    const keep = fidelityOf(settings).storageClass === 'keep';
    if (code === 'InvalidStorageClass') throw new StorageClassRefusedError(storageClass, keep, error);
    if (code !== 'InvalidArgument') throw error;
    const fidelity = fidelityOf(settings);
    fidelity.storageClassProbes ??= new Map();
    let probe = fidelity.storageClassProbes.get(storageClass);
    if (!probe) {
      const key = `${fidelity.probePrefix}.s3migrate-storage-class-probe-${process.pid}-${Date.now()}`;
      probe = settings.dest.refusesStorageClass(key, storageClass).catch(() => undefined);
      fidelity.storageClassProbes.set(storageClass, probe);
    }
    if (await probe) throw new StorageClassRefusedError(storageClass, keep, error);
    throw error;
  }
}
