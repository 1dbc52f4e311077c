// Schemas shared by several routes; each route keeps its own beside it.
import { Type, type Static } from '@sinclair/typebox';
import { kindOf } from '../runs/manager.js';

export const OrgName = Type.String({ minLength: 1, maxLength: 255 });
export const OrgNames = Type.Array(OrgName, { minItems: 1, maxItems: 200_000 });
export const TypeParams = Type.Object({ type: Type.String() });
export type TypeParamsT = Static<typeof TypeParams>;
export const Concurrency = Type.Integer({ minimum: 1, maximum: 1000 });

/** `:type` must be a migration type this fleet knows; otherwise 404 (docs/api.md). */
export function migrationType(type: string): string {
  return kindOf(type).type;
}
