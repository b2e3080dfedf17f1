import { runDecode } from '../../app';

function run(args: readonly string[]): { exitCode: number; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exitCode = runDecode(args, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { exitCode, stdout, stderr };
}

describe('carbonpay decode', () => {
  test('a card number', () => {
    expect(run(['8600794000000013'])).toEqual({
      exitCode: 0,
      stdout: [
        'kind: card number',
        'class: 0 (card)',
        'card level: 0',
        'area: 794',
        'sequence: 00000001',
        'check digit: 3 (valid)',
      ],
      stderr: [],
    });
  });

  test('an account id', () => {
    expect(run(['8621794000000001'])).toEqual({
      exitCode: 0,
      stdout: ['kind: account id', 'class: 2 (public)', 'type: 1 (online payment)', 'area: 794', 'sequence: 000000001'],
      stderr: [],
    });
  });

  test('a bad Luhn digit: parts shown, exit 2, one line on stderr', () => {
    const { exitCode, stdout, stderr } = run(['8600794000000012']);
    expect(exitCode).toBe(2);
    expect(stdout).toContain('check digit: invalid (expected 3)');
    expect(stderr).toEqual(['carbonpay decode: bad Luhn check digit: expected 3, got 2']);
  });

  test.each([
    ['', 'a card number or account id must be 16 digits'],
    ['abc', 'a card number or account id must be 16 digits'],
    ['860079400000001', 'a card number or account id must be 16 digits'],
    ['8691794000000001', 'customer class must be 0 (card number) or 1, 2, 6 (account id), got 9'],
    ['8625794000000001', 'account type must be 0 to 4, got 5'],
  ])('%j → exit 2 and one line on stderr', (code, reason) => {
    expect(run([code])).toEqual({ exitCode: 2, stdout: [], stderr: [`carbonpay decode: ${reason}`] });
  });

  test.each([[[]], [['8600794000000013', '8621794000000001']]])('%j: wrong argument count → exit 2', (args) => {
    expect(run(args)).toEqual({
      exitCode: 2,
      stdout: [],
      stderr: ['carbonpay decode: expected exactly one argument: <card number|account id>'],
    });
  });
});
