// Imported first by the child scripts the process tests spawn: a child must never outlive the test
// that started it. A test that fails or times out abandons its children, and a child still waiting
// for its start file (or hung in the module) would otherwise keep running and hold the token and a
// core for the rest of the run. The parent keeps the child's stdin open as a pipe: when the parent
// ends (or closes it), the pipe ends and the child exits at once. An unref'd pipe: the child still
// ends by itself when its work is done.
process.stdin.on('end', () => process.exit(70));
process.stdin.on('error', () => process.exit(70));
process.stdin.resume();
process.stdin.unref?.();
