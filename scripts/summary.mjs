// Prints one closing line for the whole test command: jest's counts (from its JSON report) plus the smoke run.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync('.artifacts/jest.json', 'utf8'));
const passed = report.numPassedTests + 1; // + the smoke run, which got here only by passing
const failed = report.numFailedTests;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
