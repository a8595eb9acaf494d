# Cython's view of mpagealloc_fast.py where setup.py compiles it (an augmenting .pxd: the .py is
# unchanged and still runs interpreted). merge_summaries_fast does its arithmetic on C integers: a
# pallocSum is a uint64, and its fields and their sums stay far below 2^64.
import cython

@cython.locals(mpv=cython.ulonglong, m=cython.ulonglong, lg=cython.int, lg2=cython.int, full=cython.ulonglong,
               x=cython.ulonglong, start=cython.ulonglong, most=cython.ulonglong, end=cython.ulonglong,
               si=cython.ulonglong, mi=cython.ulonglong, ei=cython.ulonglong, i=cython.Py_ssize_t)
cpdef merge_summaries_fast(p, sums, int log_max_pages_per_sum)

# find's scan of a small block: entry indexes, page counts and the fields of a summary.
@cython.locals(first=cython.Py_ssize_t, mpv=cython.ulonglong, lg2=cython.int, s=cython.ulonglong,
               start=cython.longlong, most=cython.longlong, end=cython.longlong)
cpdef tuple _scan_block(get, Py_ssize_t k, Py_ssize_t hi, Py_ssize_t i, long long npages, long long size,
                        long long base, int log_max_pages, unsigned long long fm, int lg)
