import { RateLimiter } from './kube.js';

test('the rate limiter allows a burst, then the configured rate', async () => {
  const limiter = new RateLimiter(20, 5);
  const started = Date.now();
  for (let i = 0; i < 5; i++) await limiter.take();
  expect(Date.now() - started).toBeLessThan(30);
  for (let i = 0; i < 10; i++) await limiter.take();
  // 10 more tokens at 20/s take about half a second.
  expect(Date.now() - started).toBeGreaterThanOrEqual(440);
  expect(Date.now() - started).toBeLessThan(2_000); // a loaded machine may run timers late
});
