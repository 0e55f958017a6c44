/* A deterministic small-object allocator for the grader's probes (loaded by probe_runtime.py).

   Python hashes an object without __hash__ by its address, so a set of a student's Values iterates in
   address order. Addresses in the kernel depend on everything that ran before (its threads, the timing
   of output): a notebook whose backward pass depends on that order (`=` instead of `+=`) got a different
   grade on each run. Once the student's cells have run, the probe runtime switches Python's object and
   memory allocators to this one: blocks of up to 512 bytes come from pages of one region at a fixed
   address, bump-allocated per 16-byte size class with LIFO free lists, so their addresses depend only
   on what the probes themselves allocate and free. Blocks from before the switch, and larger ones, go
   to the allocator that was there before. Pages are never returned (a probe run is short). Between
   probes the runtime pauses it: its own bookkeeping (timings, JSON of varying length) then allocates
   from the previous allocator and cannot shift the probes' addresses, and so do the kernel's other
   threads (its output and control threads), whatever they do meanwhile.

   Built by ci/install.sh into the environment: cc -O2 -shared -fPIC -o <venv>/lib/grader-detalloc.so */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} Allocator;  /* PyMemAllocatorEx */

#define CLASSES 32           /* 16 .. 512 bytes, like pymalloc */
#define PAGE ((uintptr_t)1 << 16)
#define CHUNK ((uintptr_t)1 << 22)

static uintptr_t base, cursor, mapped;          /* the region: [base, mapped) is mapped, pages below cursor in use */
static uintptr_t bump[CLASSES], bump_end[CLASSES];
static void *freed[CLASSES];
static unsigned char page_class[1 << 20];       /* class of each page of the region (1 << 20 pages = 64 GiB) */
static Allocator previous[2];                   /* what MEM and OBJ used before: for blocks from before, and large ones */
static int paused;                              /* while set, new blocks come from `previous` (the runtime's bookkeeping) */
static pthread_t owner;                         /* the thread that runs the probes; the kernel's others use `previous` */

static int ours(void *p) { return (uintptr_t)p >= base && (uintptr_t)p < cursor; }

static void *new_page(int cls) {
    if (cursor + PAGE > mapped) {
        if (((mapped - base) >> 16) + (CHUNK >> 16) > sizeof(page_class)) return NULL;
        void *m = mmap((void *)mapped, CHUNK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (m == MAP_FAILED) return NULL;
        if ((uintptr_t)m != mapped) { munmap(m, CHUNK); return NULL; }
        mapped += CHUNK;
    }
    uintptr_t page = cursor;
    cursor += PAGE;
    page_class[(page - base) >> 16] = (unsigned char)cls;
    bump[cls] = page;
    bump_end[cls] = page + PAGE;
    return (void *)page;
}

static void *small_alloc(int cls) {
    size_t size = (size_t)(cls + 1) << 4;
    void *p = freed[cls];
    if (p) { freed[cls] = *(void **)p; return p; }
    if (bump[cls] + size > bump_end[cls] && !new_page(cls)) return NULL;
    p = (void *)bump[cls];
    bump[cls] += size;
    return p;
}

static void *det_malloc(void *ctx, size_t size) {
    Allocator *prev = &previous[(intptr_t)ctx];
    if (size == 0) size = 1;
    if (size > 512 || paused || !pthread_equal(pthread_self(), owner)) return prev->malloc(prev->ctx, size);
    void *p = small_alloc((int)((size - 1) >> 4));
    return p ? p : prev->malloc(prev->ctx, size);
}

static void *det_calloc(void *ctx, size_t nelem, size_t elsize) {
    if (elsize && nelem > SIZE_MAX / elsize) return NULL;
    size_t size = nelem * elsize;
    void *p = det_malloc(ctx, size);
    if (p && ours(p)) memset(p, 0, size ? size : 1);
    else if (p) memset(p, 0, size);
    return p;
}

static void det_free(void *ctx, void *p) {
    if (!p) return;
    if (!ours(p)) { Allocator *prev = &previous[(intptr_t)ctx]; prev->free(prev->ctx, p); return; }
    int cls = page_class[((uintptr_t)p - base) >> 16];
    *(void **)p = freed[cls];
    freed[cls] = p;
}

static void *det_realloc(void *ctx, void *p, size_t size) {
    Allocator *prev = &previous[(intptr_t)ctx];
    if (!p) return det_malloc(ctx, size);
    if (!ours(p)) return prev->realloc(prev->ctx, p, size);
    size_t have = ((size_t)page_class[((uintptr_t)p - base) >> 16] + 1) << 4;
    if (size <= have && size > have - 16) return p;
    void *q = det_malloc(ctx, size);
    if (!q) return NULL;
    memcpy(q, p, size < have ? size : have);
    det_free(ctx, p);
    return q;
}

void grader_detalloc_pause(int on) { paused = on; }

/* Install for the MEM (domain 1) and OBJ (domain 2) domains, given the current allocators and two slots to
   fill (the caller passes them to PyMem_SetAllocator). Returns 0, or -1 when the region cannot be mapped. */
int grader_detalloc_install(uintptr_t region, Allocator *mem_now, Allocator *obj_now,
                            Allocator *mem_new, Allocator *obj_new) {
    void *m = mmap((void *)region, CHUNK, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED) return -1;
    if ((uintptr_t)m != region) { munmap(m, CHUNK); return -1; }
    base = cursor = region;
    owner = pthread_self();
    mapped = region + CHUNK;
    previous[0] = *mem_now;
    previous[1] = *obj_now;
    Allocator ours_mem = {(void *)0, det_malloc, det_calloc, det_realloc, det_free};
    Allocator ours_obj = {(void *)1, det_malloc, det_calloc, det_realloc, det_free};
    *mem_new = ours_mem;
    *obj_new = ours_obj;
    return 0;
}
