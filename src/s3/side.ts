export type Side = 'source' | 'dest';

/** Remembers which side an error came from, so a doomed run names the right bucket and credentials. */
export function tagSide<T>(error: T, side: Side): T {
  if (error && typeof error === 'object' && !('s3migrateSide' in error)) {
    Object.assign(error, { s3migrateSide: side });
  }
  return error;
}

export function sideOf(error: unknown): Side {
  return (error as { s3migrateSide?: Side } | undefined)?.s3migrateSide ?? 'dest';
}
