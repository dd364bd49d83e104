/* An OpenMP program for tests/programs/real_programs.sh: parallel loops
 * with reductions, barriers, critical sections, tasks and a dynamic
 * schedule, as numeric code uses them.  libgomp keeps a pool of threads
 * that spin, then sleep on futexes through raw system calls; the result
 * must be the same under gshim. */
#include <omp.h>
#include <stdio.h>

static long fib(int n)
{
	long a, b;

	if (n < 18)
		return n < 2 ? n : fib(n - 1) + fib(n - 2);
#pragma omp task shared(a)
	a = fib(n - 1);
#pragma omp task shared(b)
	b = fib(n - 2);
#pragma omp taskwait
	return a + b;
}

int main(void)
{
	double sum = 0;
	long hits = 0, f = 0;
	int rep;

	for (rep = 0; rep < 50; rep++) {
		long i;
#pragma omp parallel for reduction(+:sum) num_threads(4)
		for (i = 0; i < 200000; i++)
			sum += 1.0 / (1.0 + (double)i * i);
#pragma omp parallel num_threads(4)
		{
#pragma omp barrier
#pragma omp critical
			hits++;
		}
#pragma omp parallel for schedule(dynamic, 64) reduction(+:hits) num_threads(3)
		for (i = 0; i < 10000; i++)
			hits += (i % 7 == 0);
	}
#pragma omp parallel num_threads(4)
#pragma omp single
	f = fib(27);
	printf("sum %.9f hits %ld fib %ld\n", sum, hits, f);
	return 0;
}
