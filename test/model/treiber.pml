/*
 * Model of one objpool slot (native/objpool.hpp: pop_list / push_list) for
 * the spin model checker: every interleaving of THREADS threads, each doing
 * OPS pops and pushes (holding up to two objects), over N objects.
 *
 * Checked: no object is ever held by two threads (assert at each pop), and
 * when all threads are done every object is in the list exactly once.
 *
 * The head is one 64-bit word {index, tag} in the real code, read and CAS'd
 * atomically: here the pair is read in one atomic step and compared in one.
 * Reading next[] and writing it are separate steps, as in the real code.
 * spin explores sequentially consistent interleavings; the memory orders
 * are checked separately by ThreadSanitizer (test/native/run.js).
 *
 * Deliberately broken variants that must fail (test/native/run.js runs them):
 *   -DNO_TAG        the tag is not bumped on a change (ABA)
 *   -DLINK_ONCE     push writes its link once, not again after a failed CAS
 */

#ifndef N
#define N 2
#endif
#ifndef THREADS
#define THREADS 2
#endif
#ifndef OPS
#define OPS 3
#endif
#define NONE 255

byte head;
byte tag;
byte next[N];
byte owner[N];  /* 0: not held; else the id of the thread holding it */

#ifdef NO_TAG
#define BUMP(t) skip
#else
#define BUMP(t) t = t + 1  /* a byte: wraps at 256, never reached here */
#endif

proctype worker(byte me) {
  byte held[2];
  byte nheld = 0;
  byte ops = 0;
  byte h, h_idx, h_tag, nxt, ok;
  do
  :: ops < OPS || nheld > 0 ->
     if
     :: ops < OPS && nheld < 2 ->  /* pop */
        ops++;
        ok = 0;
        do
        :: ok == 0 ->
           atomic { h_idx = head; h_tag = tag };
           if
           :: h_idx == NONE -> ok = 2  /* empty */
           :: else ->
              nxt = next[h_idx];  /* may be stale: the CAS below decides */
              atomic {
                if
                :: head == h_idx && tag == h_tag -> head = nxt; BUMP(tag); ok = 1
                :: else -> skip
                fi
              }
           fi
        :: ok != 0 -> break
        od;
        if
        :: ok == 1 ->
           assert(owner[h_idx] == 0);  /* handed out twice */
           owner[h_idx] = me;
           held[nheld] = h_idx;
           nheld++
        :: else -> skip
        fi
     :: nheld > 0 ->  /* push either object held */
        if :: ops < OPS -> ops++ :: else -> skip fi;
        nheld--;
        if
        :: h = held[nheld]
        :: nheld == 1 -> h = held[0]; held[0] = held[1]
        fi;
        assert(owner[h] == me);
        owner[h] = 0;
        ok = 0;
#ifdef LINK_ONCE
        next[h] = head;
#endif
        do
        :: ok == 0 ->
           atomic { h_idx = head; h_tag = tag };
#ifndef LINK_ONCE
           next[h] = h_idx;
#endif
           atomic {
             if
             :: head == h_idx && tag == h_tag -> head = h; BUMP(tag); ok = 1
             :: else -> skip
             fi
           }
        :: ok != 0 -> break
        od
     fi
  :: else -> break
  od
}

init {
  byte k;
  byte cur;
  byte count = 0;
  byte seen[N];
  atomic {
    for (k : 0 .. N - 2) { next[k] = k + 1 }
    next[N - 1] = NONE;
    head = 0;
    for (k : 1 .. THREADS) { run worker(k) }
  }
  (_nr_pr == 1);  /* every worker has finished */
  cur = head;
  do
  :: cur != NONE && count <= N ->
     assert(seen[cur] == 0);  /* listed twice (a cycle) */
     seen[cur] = 1;
     count++;
     cur = next[cur]
  :: else -> break
  od;
  assert(count == N)  /* no object lost */
}
