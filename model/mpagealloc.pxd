# Cython's view of mpagealloc.py where setup.py compiles it (an augmenting .pxd: the .py is
# unchanged and still runs interpreted). merge_summaries does its arithmetic on C integers: a
# pallocSum is a uint64, and its fields and their sums stay far below 2^64.
import cython

@cython.locals(mpv=cython.ulonglong, m=cython.ulonglong, lg=cython.int, lg2=cython.int, full=cython.ulonglong,
               x=cython.ulonglong, start=cython.ulonglong, most=cython.ulonglong, end=cython.ulonglong,
               si=cython.ulonglong, mi=cython.ulonglong, ei=cython.ulonglong, i=cython.Py_ssize_t)
cpdef merge_summaries(p, sums, int log_max_pages_per_sum)
