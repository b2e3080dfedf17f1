import { preparedSql } from '../../projections';

describe('prepared statements', () => {
  it('keep one text per name', () => {
    const first = preparedSql('test_prepared_one', 'SELECT 1');
    expect(first).toEqual({ name: 'test_prepared_one', text: 'SELECT 1' });
    expect(preparedSql('test_prepared_one', 'SELECT 1')).toEqual(first);
    expect(() => preparedSql('test_prepared_one', 'SELECT 2')).toThrow(/two texts/);
  });
});
