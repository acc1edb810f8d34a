/**
 * How a catalog pass's source is kept in the meta table (both stores): `catalog_source` (listing or
 * inventory) and, for an inventory, the report's manifest URL, MD5, creation time, data file count and the
 * first data file not yet stored. Plain key/value rows, readable with any SQL client.
 */
import type { CatalogSource, CatalogSourceSummary } from './types.js';

type MetaReader = (key: string) => string | undefined;

const INVENTORY_KEYS = ['inventory_manifest', 'inventory_manifest_md5', 'inventory_created_at', 'inventory_files', 'inventory_next_file'] as const;

/** The source of the current pass; a state without catalog_source (the first release) listed its bucket. */
export function catalogSourceOf(meta: MetaReader): CatalogSource {
  if (meta('catalog_source') !== 'inventory') return { kind: 'listing' };
  return {
    kind: 'inventory',
    manifestUrl: meta('inventory_manifest') ?? '',
    manifestMd5: meta('inventory_manifest_md5') ?? '',
    createdAt: meta('inventory_created_at') ?? '',
    fileCount: Number(meta('inventory_files') ?? '0'),
  };
}

/** The meta rows a new pass from `source` writes (undefined: delete the row). */
export function catalogSourceMeta(source: CatalogSource): Array<[string, string | undefined]> {
  if (source.kind === 'listing') return [['catalog_source', 'listing'], ...INVENTORY_KEYS.map((key): [string, undefined] => [key, undefined])];
  return [
    ['catalog_source', 'inventory'],
    ['inventory_manifest', source.manifestUrl],
    ['inventory_manifest_md5', source.manifestMd5],
    ['inventory_created_at', source.createdAt],
    ['inventory_files', String(source.fileCount)],
    ['inventory_next_file', '0'],
  ];
}

/** Two passes list the same thing: both the bucket, or the same inventory report (URL and bytes). */
export function sameCatalogSource(a: CatalogSource, b: CatalogSource): boolean {
  if (a.kind === 'listing' || b.kind === 'listing') return a.kind === b.kind;
  return a.manifestUrl === b.manifestUrl && a.manifestMd5 === b.manifestMd5;
}

/** What status shows of the current pass's source; undefined before any catalog. */
export function catalogSourceSummary(
  meta: MetaReader,
  parts: () => { parts: number; partsDone: number },
): CatalogSourceSummary | undefined {
  if (meta('catalog_pass') === undefined) return undefined;
  const source = catalogSourceOf(meta);
  if (source.kind === 'listing') return { kind: 'listing', ...parts() };
  return {
    kind: 'inventory',
    manifestUrl: source.manifestUrl,
    createdAt: source.createdAt,
    files: source.fileCount,
    filesDone: Number(meta('inventory_next_file') ?? '0'),
  };
}
