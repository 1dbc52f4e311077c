// What a schema's 400 says (src/api/validation-message.ts): each field once, with what it allows. Pure.
import { describe, expect, it } from 'vitest';
import { validationMessage } from '../src/api/validation-message.js';

const literal = (path: string, v: string) => ({ keyword: 'const', instancePath: path, message: 'must be equal to constant', params: { allowedValue: v } });

describe('a validation message', () => {
  it('turns a union of literals into one line naming them, without the anyOf', () => {
    const issues = [
      literal('/finding', 'a'),
      literal('/finding', 'b'),
      { keyword: 'anyOf', instancePath: '/finding', message: 'must match a schema in anyOf', params: {} },
    ];
    expect(validationMessage('querystring', issues)).toBe('querystring/finding must be one of: "a", "b"');
  });

  it('names a single constant, an enum, an extra property, and keeps other problems once each, field by field', () => {
    expect(validationMessage('body', [literal('/confirm', 'purge-couchdb-data')])).toBe('body/confirm must be "purge-couchdb-data"');
    expect(validationMessage('body', [{ keyword: 'enum', instancePath: '/state', message: 'x', params: { allowedValues: ['ready', 'holding'] } }])).toBe(
      'body/state must be one of: "ready", "holding"',
    );
    const mixed = [
      { keyword: 'additionalProperties', instancePath: '', message: 'must NOT have additional properties', params: { additionalProperty: 'x' } },
      { keyword: 'minimum', instancePath: '/ms', message: 'must be >= 0', params: {} },
      { keyword: 'minimum', instancePath: '/ms', message: 'must be >= 0', params: {} },
    ];
    expect(validationMessage('body', mixed)).toBe('body must NOT have additional properties ("x"); body/ms must be >= 0');
  });
});
