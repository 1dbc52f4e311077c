// What a 400 for a body, query or params that fails its schema says: each
// field once, with what it allows. Ajv reports a union of literals (an enum
// such as a survey finding, or phase 4's confirm word) as one "must be equal
// to constant" per literal, then "must match a schema in anyOf": this turns
// that into "querystring/finding must be one of: ...". Pure.

export interface SchemaIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** One line per field, in the order Ajv met them: `<where><path> <problem>`. */
export function validationMessage(where: string | undefined, issues: SchemaIssue[]): string {
  const fields = new Map<string, { allowed: unknown[]; problems: string[] }>();
  const at = (path: string) => {
    let f = fields.get(path);
    if (!f) fields.set(path, (f = { allowed: [], problems: [] }));
    return f;
  };
  for (const i of issues) {
    const f = at(`${where ?? ''}${i.instancePath}`);
    if (i.keyword === 'const') f.allowed.push(i.params.allowedValue);
    else if (i.keyword === 'enum') f.allowed.push(...((i.params.allowedValues as unknown[]) ?? []));
    else if (i.keyword === 'additionalProperties') f.problems.push(`must NOT have additional properties ("${String(i.params.additionalProperty)}")`);
    else if (i.message) f.problems.push(i.message);
  }
  const lines: string[] = [];
  for (const [path, f] of fields) {
    const allowed = [...new Set(f.allowed.map((v) => JSON.stringify(v)))];
    // With the literals named, anyOf's "must match a schema in anyOf" says nothing more.
    const problems = [...new Set(allowed.length ? f.problems.filter((p) => !p.includes('anyOf')) : f.problems)];
    if (allowed.length) problems.unshift(allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of: ${allowed.join(', ')}`);
    lines.push(`${path} ${problems.join(', ')}`);
  }
  return lines.join('; ');
}
