/** Destination key = destination prefix + (source key without the catalog's prefix), byte for byte. */
export function mapKey(sourceKey: string, sourcePrefix: string, destPrefix: string): string {
  const relative = sourceKey.startsWith(sourcePrefix) ? sourceKey.slice(sourcePrefix.length) : sourceKey;
  return destPrefix + relative;
}
