// A module-resolution hook for development and tests: the workspace packages resolve through their
// `greenroom-source` export condition, to their TypeScript sources, so nothing needs building first. Installed
// packages never load it, and no other tool sets that condition.
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, 'greenroom-source'] });
}
