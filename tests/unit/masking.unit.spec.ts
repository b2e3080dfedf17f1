import fc from 'fast-check';
import { mask, maskAccountNumber } from '../../security';

describe('masking (C App. B)', () => {
  test('every example of the appendix', () => {
    expect(mask('chinese_name', '李小明')).toBe('李**');
    expect(mask('citizen_id', '360102199001011238')).toBe('3*****8');
    expect(mask('landline', '07948261234')).toBe('****1234');
    expect(mask('mobile', '13912345634')).toBe('1*****34');
    expect(mask('address', '抚州市临川区钟岭街道123号')).toBe('抚州市临川区****');
    expect(mask('email', 'green@163.com')).toBe('g**@163.com');
    expect(mask('bank_card', '6222600123451234')).toBe('622260*****1234');
    expect(mask('bank_joint_number', '123456789012')).toBe('12*****');
  });

  test('account numbers are masked as mobiles or fixed lines', () => {
    expect(maskAccountNumber('13912345634')).toBe('1*****34');
    expect(maskAccountNumber('07948261234')).toBe('****1234');
  });

  test('a masked value never holds more of the original than the rule keeps, whatever its length', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (value) => {
        const characters = [...value];
        const masked = mask('bank_card', value);
        if (characters.length <= 10) expect(masked).toBe('*****');
        else expect(masked).toBe(`${characters.slice(0, 6).join('')}*****${characters.slice(-4).join('')}`);
      }),
    );
  });
});
