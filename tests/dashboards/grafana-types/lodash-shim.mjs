// Module hooks for interval.mjs: @grafana/data's ES modules import named functions from
// 'lodash', a CommonJS package whose names Node cannot detect; this serves 'lodash' as an ES
// module re-exporting every function of the installed lodash (nothing else is changed).
import { createRequire } from 'node:module';

const MODULES = `${process.env.PANTAU_NODE_MODULES}/`;

export async function resolve(specifier, context, next) {
  if (specifier === 'lodash') {
    return { url: 'pantau-shim:lodash', shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url !== 'pantau-shim:lodash') {
    return next(url, context);
  }
  const lodash = createRequire(MODULES)('lodash');
  const names = Object.keys(lodash).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'lodashCjs');
  const source = [
    "import { createRequire } from 'node:module';",
    `const lodashCjs = createRequire(${JSON.stringify(MODULES)})('lodash');`,
    'export default lodashCjs;',
    `export const { ${names.join(', ')} } = lodashCjs;`,
  ].join('\n');
  return { format: 'module', source, shortCircuit: true };
}
