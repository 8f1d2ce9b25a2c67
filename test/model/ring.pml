/*
 * Model of a handle channel's ring and its promotion (native/channel.hpp,
 * "The ring"; lib/channel.ts runs the same steps in JS) for the spin model
 * checker. The ring: a single sender publishes each value with a CAS of the
 * ring's enqueue position (which fails when a flag is set: Frozen, or
 * Wait); the single receiver loads that position when what it saw last is
 * used up, reads the cell, and frees it with a CAS of its dequeue position.
 * Promotion, by a second sender: the mode goes Promoting, both ring
 * positions get the Frozen bit, what the ring holds becomes full MPMC cells
 * (Vyukov's queue, as in test/model/channel.pml) at the same positions, the
 * MPMC positions are set, and the mode goes Mpmc. A ring endpoint whose CAS
 * finds the Frozen bit waits for Mpmc and goes on there: the sender with
 * its value (already marked in flight), the receiver with nothing taken.
 *
 * Processes: the ring sender S sends values 0 and 1; with PROMOTE a second
 * sender P promotes the channel and sends value 2 through the MPMC queue;
 * the ring receiver R takes every value. With WAIT the receiver waits as
 * receiveAsync does (reads the wake word, counts itself and sets the ring's
 * Wait bit, looks again, sleeps until the wake word moves); a ring send
 * whose CAS met the bit publishes with a second CAS and wakes. Without WAIT
 * an empty receiver blocks until some position or the mode changes (a lost
 * value then shows as a receiver stuck at the end).
 *
 * Every shared access is one step (spin explores sequentially consistent
 * interleavings; ThreadSanitizer checks the memory orders, see
 * test/native/channel_stress.cc, the ring cases). Checked:
 *   - a value taken is in the channel (published, not yet taken): none
 *     taken twice, none read before it was published or after it was
 *     overwritten;
 *   - the ring sender's values arrive in the order sent;
 *   - every value is taken: a receiver that sleeps or blocks for good is an
 *     invalid end state.
 *
 * Broken variants (test/native/run.js runs them; each must fail):
 *   -DSTORE_PUBLISH     the ring sender publishes with a plain store of its
 *                       position (no CAS): a send after the freeze is lost
 *   -DSHARED_CELLS      the ring uses the MPMC cells' value words: a stale
 *                       ring write lands on an MPMC value
 *   -DFREEZE_ENQ_ONLY   promotion freezes only the enqueue position: the
 *                       ring receiver takes a cell the MPMC queue also holds
 *   -DREAD_THEN_FREEZE  promotion reads the positions, then freezes: a ring
 *                       publish in between is dropped by the conversion
 *   -DNO_WAIT_BIT       (WAIT) a waiter counts itself but sets no bit: a
 *                       ring send does not wake it
 */

#ifndef CAP
#define CAP 2
#endif
#define NV 3 /* values 0, 1 from S; 2 from P */
#ifdef PROMOTE
#define NTOTAL 3
#else
#define NTOTAL 2
#endif
#define POS 63
#define WAITB 64
#define FROZEN 128
#define RING 0
#define PROMOTING 1
#define MPMC 2

byte renq;      /* the ring's enqueue position, with WAITB and FROZEN */
byte rdeq;      /* the ring's dequeue position, with FROZEN */
byte rval[CAP]; /* the ring's cells */
byte seq[CAP];  /* the MPMC queue (Vyukov's): seq and value per cell */
byte mval[CAP];
byte enq;
byte deq;
byte mode;    /* RING, PROMOTING, MPMC */
byte waiters; /* the attention word's waiter count */
byte wake;    /* the wake word */
/* Ghosts. */
bit inchan[NV]; /* published and not yet taken */
byte got[NV];   /* times taken */
byte sdone;     /* senders finished */
byte pub;       /* publishes and promotions so far: what an empty receiver waits for */

#ifdef SHARED_CELLS
#define RCELL(p) mval[(p) % CAP]
#else
#define RCELL(p) rval[(p) % CAP]
#endif

/* Vyukov's send of V (lib/channel.ts queueSend; channel.hpp send_checked),
 * then the attention word: waiters are woken. */
inline mpmc_send(V) {
  do
  :: atomic { p = enq; d = seq[p % CAP] - p }
     if
     :: d == 0 ->
        atomic {
          if
          :: enq == p -> enq = p + 1; d = 9
          :: else -> skip
          fi
        };
        if
        :: d == 9 -> break
        :: else -> skip
        fi
     :: else -> skip /* full, or another sender moved on: again */
     fi
  od;
  mval[p % CAP] = V;
  atomic { seq[p % CAP] = p + 1; assert(!inchan[V]); inchan[V] = 1; pub++ };
  atomic {
    if
    :: waiters > 0 -> wake++
    :: else -> skip
    fi
  }
}

/* Channel::promote(): the first comer converts, the others wait for Mpmc. */
inline promote() {
  atomic {
    if
    :: mode == RING -> mode = PROMOTING; d = 9
    :: else -> d = 0
    fi
  };
  if
  :: d == 9 ->
#ifdef READ_THEN_FREEZE
     e = renq & POS;
     r = rdeq & POS;
     renq = renq | FROZEN;
     rdeq = rdeq | FROZEN;
#else
     atomic { e = renq & POS; renq = renq | FROZEN };
#ifdef FREEZE_ENQ_ONLY
     r = rdeq & POS;
#else
     atomic { r = rdeq & POS; rdeq = rdeq | FROZEN };
#endif
#endif
     /* The conversion: what the ring holds, full cells; the rest free. */
     i = 0;
     do
     :: i < CAP ->
        if
        :: i < e - r -> mval[(r + i) % CAP] = rval[(r + i) % CAP]; seq[(r + i) % CAP] = r + i + 1
        :: else -> seq[(r + i) % CAP] = r + i
        fi;
        i++
     :: else -> break
     od;
     deq = r;
     enq = e;
     atomic { mode = MPMC; pub++ }
  :: else -> (mode == MPMC)
  fi;
  d = 0; e = 0; r = 0; i = 0
}

proctype sender() {
  byte v, e, r, i, p, n = 0;
  int d;
  do
  :: n >= 2 -> break
  :: else ->
     v = renq; /* plain: its own position */
     if
     :: v & FROZEN -> goto promoted
     :: else -> skip
     fi;
     e = v & POS;
     atomic { r = rdeq & POS }; /* the Atomics load of the dequeue position */
     if
     :: e - r >= CAP -> (e - (rdeq & POS) < CAP || (rdeq & FROZEN)) /* full: again once freed (or frozen) */
     :: else ->
        RCELL(e) = n; /* the value (marked in flight before) */
#ifdef STORE_PUBLISH
        atomic { renq = e + 1; assert(!inchan[n]); inchan[n] = 1; pub++ };
        n++
#else
        do /* the publish CAS, again while only the Wait bit changed */
        :: atomic {
             if
             :: renq == v -> renq = ((e + 1) & POS) | (v & WAITB); assert(!inchan[n]); inchan[n] = 1; pub++; d = 9
             :: else -> v = renq; d = 0
             fi
           };
           if
           :: d == 9 -> break
           :: v & FROZEN -> goto promoted
           :: else -> skip
           fi
        od;
        if
        :: v & WAITB -> atomic { if :: waiters > 0 -> wake++ :: else -> skip fi } /* after_send() */
        :: else -> skip
        fi;
        d = 0;
        n++
#endif
     fi
  od;
  goto done;
promoted:
  /* The rest through the MPMC queue, this value first. */
  promote();
  do
  :: n >= 2 -> break
  :: else -> mpmc_send(n); n++
  od;
done:
  sdone++
}

#ifdef PROMOTE
proctype promoter() {
  byte e, r, i, p;
  int d;
  promote();
  mpmc_send(2);
  sdone++
}
#endif

/* One receive into h (255: empty): the ring while it is not frozen, then the MPMC queue. */
inline receive() {
  h = 255;
  if
  :: !onq ->
     dv = rdeq; /* plain: its own position */
     if
     :: dv & FROZEN -> onq = 1
     :: else ->
        if
        :: filled == dv ->
           atomic { ev = renq }; /* the Atomics load */
           if
           :: ev & FROZEN -> onq = 1
           :: else -> filled = ev & POS
           fi
        :: else -> skip
        fi;
        if
        :: !onq && filled != dv ->
           t = RCELL(dv); /* plain: after the load that saw it published */
           atomic {
             if
             :: rdeq == dv -> rdeq = dv + 1; h = t
             :: else -> onq = 1 /* frozen: the value goes with the conversion */
             fi
           }
        :: else -> skip
        fi
     fi;
     if
     :: onq -> promote_wait()
     :: else -> skip
     fi
  :: else -> skip
  fi;
  if
  :: onq && h == 255 -> /* Vyukov's receive */
     do
     :: atomic { p = deq; d = seq[p % CAP] - (p + 1) }
        if
        :: d == 0 ->
           atomic {
             if
             :: deq == p -> deq = p + 1; d = 9
             :: else -> skip
             fi
           };
           if
           :: d == 9 -> h = mval[p % CAP]; seq[p % CAP] = p + CAP; break
           :: else -> skip
           fi
        :: d < 0 -> break /* empty */
        :: else -> skip
        fi
     od;
     d = 0; p = 0
  :: else -> skip
  fi;
  if
  :: h != 255 ->
     atomic {
       assert(h < NV && inchan[h]); /* in the channel: not taken twice, not overwritten */
       inchan[h] = 0;
       got[h]++;
       if
       :: h < 2 -> assert(h == last); last++ /* S's values in order */
       :: else -> skip
       fi;
       n++
     }
  :: else -> skip
  fi
}

/* The ring receiver found the Frozen bit: waits for Mpmc (promote() there). */
inline promote_wait() {
  (mode == MPMC)
}

proctype receiver() {
  byte h, t, dv, ev, filled = 0, p, n = 0, last = 0, seen, snap;
  bit onq = 0;
  int d;
  do
  :: n >= NTOTAL -> break
  :: else ->
     snap = pub;
     receive();
     if
     :: h == 255 ->
#ifdef WAIT
        seen = wake;
        atomic { waiters++ };
#ifndef NO_WAIT_BIT
        atomic { renq = renq | WAITB };
#endif
        receive(); /* looked at again */
        if
        :: h == 255 -> (wake != seen)
        :: else -> skip
        fi;
        /* remove_waiter(): the last one clears the bit, then reads the count again. */
        atomic { waiters--; d = waiters };
        if
        :: d == 0 ->
           atomic { renq = renq & ~WAITB };
           atomic {
             if
             :: waiters > 0 -> renq = renq | WAITB; wake++
             :: else -> skip
             fi
           }
        :: else -> skip
        fi;
        d = 0
#else
        (pub != snap) /* block until something is published (or the channel promoted) */
#endif
     :: else -> skip
     fi
  od;
  assert(got[0] == 1 && got[1] == 1);
#ifdef PROMOTE
  assert(got[2] == 1)
#endif
}


init {
  atomic {
    run sender();
#ifdef PROMOTE
    run promoter();
#endif
    run receiver()
  }
}
