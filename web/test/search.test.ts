import { describe, expect, it } from 'vitest';
import { withoutChip } from '../src/screens/Search';

describe('removing an understood chip', () => {
  it('asks the same question without that part', () => {
    expect(withoutChip('beach with Ana in Lisbon 2023', { kind: 'place', value: 'Lisbon', display: 'Lisbon', relaxed: false })).toBe('beach with Ana 2023');
    expect(withoutChip('dogs with ana', { kind: 'person', value: 'p1', display: 'Ana', relaxed: false })).toBe('dogs');
    expect(withoutChip('cat', { kind: 'tag', value: 'Cat', display: 'Cat', relaxed: false })).toBe('');
  });

  it('leaves the query alone when the chip is not in its words', () => {
    expect(withoutChip('photos from 2012', { kind: 'date', value: '2012-01-01/2012-12-31', display: '2012', relaxed: false })).toBe('photos');
    expect(withoutChip('sunset', { kind: 'tag', value: 'Beach', display: 'Beach', relaxed: false })).toBe('sunset');
  });
});
