/** JSON Schema builders the OpenAPI document's parts share (openapi.ts, service-operations.ts, console-operations.ts). */

/** A non-empty string of at most `maxLength`, optionally matching `pattern`. */
export const str = (maxLength: number, pattern?: string): Record<string, unknown> => ({
  type: 'string',
  minLength: 1,
  maxLength,
  ...(pattern !== undefined ? { pattern } : {}),
});

/** A closed object: the named properties, no others. */
export const object = (properties: Record<string, unknown>, required: string[]): Record<string, unknown> => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

export const nullable = (schema: Record<string, unknown>): Record<string, unknown> => ({
  oneOf: [schema, { type: 'null' }],
});

export const BUSINESS_DATE = { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' };

export const INSTANT = {
  type: 'string',
  maxLength: 40,
  pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$',
};

/** An id chosen by a caller or derived by us: letters and digits, then . _ : - */
export const KEY = str(64, '^[A-Za-z0-9][A-Za-z0-9._:-]*$');
