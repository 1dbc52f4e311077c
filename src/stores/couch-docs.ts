// The shapes of Chef's CouchDB data: documents, their types, org database names (docs/domain.md, section 1).

export type CouchDoc = Record<string, unknown> & { _id: string; _rev?: string };

export const TYPES = {
  organization: 'Mixlib::Authorization::Models::Organization',
  authJoin: 'Mixlib::Authorization::AuthJoin',
  container: 'Mixlib::Authorization::Models::Container',
  group: 'Mixlib::Authorization::Models::Group',
} as const;

/** A document's type is the first of these fields that is present (docs/domain.md, section 1). */
export function docType(doc: Record<string, unknown>): string | undefined {
  for (const field of ['json_class', 'couchrest-type', 'type']) {
    if (field in doc) return typeof doc[field] === 'string' ? doc[field] : undefined;
  }
  return undefined;
}

/** The types of the only documents of an org database this migration moves: containers and groups. */
export const ORG_OBJECT_TYPES: string[] = [TYPES.container, TYPES.group];
export const isOrgObject = (doc: Record<string, unknown>): boolean => ORG_OBJECT_TYPES.includes(docType(doc) ?? '');

export function orgDatabaseName(guid: string): string {
  return `chef_${guid}`;
}
