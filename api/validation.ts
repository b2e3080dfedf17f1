import Ajv2020 from 'ajv/dist/2020';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020';
import { ApiError } from './errors';
import { OPENAPI_DOCUMENT } from './openapi';

/** What one operation of the document accepts and answers, as validators compiled once at start. */
export interface OperationValidators {
  readonly operationId: string;
  readonly method: 'get' | 'post';
  /** The OpenAPI path, e.g. `/v1/accounts/{accountId}`. */
  readonly path: string;
  /** Path and query parameters together, all strings (as they arrive). */
  readonly parameters: ValidateFunction;
  readonly requiresIdempotencyKey: boolean;
  readonly idempotencyKey: ValidateFunction | undefined;
  readonly body: ValidateFunction | undefined;
  readonly responses: ReadonlyMap<number, ValidateFunction>;
}

interface ParameterSpec {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly required: boolean;
  readonly schema: unknown;
}

interface OperationSpec {
  readonly operationId: string;
  readonly parameters: readonly ParameterSpec[];
  readonly requestBody?: { readonly content: { readonly 'application/json': { readonly schema: unknown } } };
  readonly responses: Readonly<
    Record<string, { readonly content: { readonly 'application/json': { readonly schema: unknown } } }>
  >;
}

/** Compiles every operation of the document; returns them keyed by operationId. */
export function compileOperations(
  document: typeof OPENAPI_DOCUMENT = OPENAPI_DOCUMENT,
): Map<string, OperationValidators> {
  const ajv = new Ajv2020({ strict: true, allErrors: false, coerceTypes: false, useDefaults: false });
  // The document's schemas become one JSON Schema resource; its `#/components/schemas/X` references point into it.
  const toResource = (schema: unknown): unknown =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"carbonpay#/$defs/'));
  ajv.addSchema({ $id: 'carbonpay', $defs: toResource(document.components.schemas) as object });
  const rewrite = toResource;
  const compile = (schema: unknown): ValidateFunction => ajv.compile(rewrite(schema) as object);
  const operations = new Map<string, OperationValidators>();
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, raw] of Object.entries(methods as Record<string, unknown>)) {
      const spec = raw as OperationSpec;
      const inPathOrQuery = spec.parameters.filter((p) => p.in !== 'header');
      const header = spec.parameters.find((p) => p.in === 'header' && p.name === 'Idempotency-Key');
      operations.set(spec.operationId, {
        operationId: spec.operationId,
        method: method as 'get' | 'post',
        path,
        parameters: compile({
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(inPathOrQuery.map((p) => [p.name, p.schema])),
          required: inPathOrQuery.filter((p) => p.required).map((p) => p.name),
        }),
        requiresIdempotencyKey: header?.required === true,
        idempotencyKey: header ? compile(header.schema) : undefined,
        body: spec.requestBody ? compile(spec.requestBody.content['application/json'].schema) : undefined,
        responses: new Map(
          Object.entries(spec.responses).map(([status, response]) => [
            Number(status),
            compile(response.content['application/json'].schema),
          ]),
        ),
      });
    }
  }
  return operations;
}

/** Turns the first schema error into a `validation_failed` naming the field and the rule it broke. */
export function validationError(
  where: 'body' | 'parameters' | 'header',
  errors: ErrorObject[] | null | undefined,
): ApiError {
  const error = errors?.[0];
  if (!error) return new ApiError('validation_failed', `invalid ${where}`, { in: where });
  const field =
    error.keyword === 'required'
      ? joinPointer(error.instancePath, String(error.params['missingProperty']))
      : error.keyword === 'additionalProperties'
        ? joinPointer(error.instancePath, String(error.params['additionalProperty']))
        : error.instancePath || '/';
  const rule =
    error.keyword === 'additionalProperties'
      ? 'is not allowed'
      : error.keyword === 'required'
        ? 'is required'
        : (error.message ?? error.keyword);
  // The client's own value is never echoed: it may be huge, binary or personal.
  return new ApiError('validation_failed', `${where} ${field} ${rule}`, { in: where, field, rule: error.keyword });
}

function joinPointer(base: string, name: string): string {
  return `${base}/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`.slice(0, 200);
}
