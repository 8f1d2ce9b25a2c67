/*
 * Model of the handle channel (native/objpool.hpp, Channel; lib/channel.ts
 * runs the same algorithm in JS) for the spin model checker: Vyukov's
 * bounded MPMC queue of CAP cells with batch claims, holes, the attention
 * word (closed flags, waiter count) and close_for_pool()'s give-back.
 *
 * Processes: producer 0 sends values 0, 1 as one batch (send_many: a prefix
 * goes, the rest again); producer 1 sends values 4, 5 one at a time, and
 * with HOLES may lose the ownership race of lib/channel.ts's send once: it
 * publishes a hole in the cell it claimed and that value is not sent.
 * Consumer 0 receives batches of up to 2 (receive_many), consumer 1 single
 * values. A closer closes the channel: after everything sent was received
 * (default), racing with the sends (CLOSE_RACE), or closes the pool
 * (POOL_CLOSE: the pool's wake-up, then close_for_pool(), racing with the
 * sends; NCONS consumers, 0 by default there, so that only the give-backs
 * empty the channel; with CLOSE_FIRST the channel's close() comes first). Consumers stop once the channel is closed and drained;
 * with WAIT they wait as lib/channel.ts's receiveAsync does (read the wake
 * word, register as a waiter, look again, sleep until the wake word moves).
 *
 * Every shared access is one step (spin explores sequentially consistent
 * interleavings; the memory orders are ThreadSanitizer's part, see
 * test/native/channel_stress.cc). Checked:
 *   - a taken cell holds a value that is in the channel (no value read twice,
 *     none read before it was published, none overwritten);
 *   - each consumer gets each producer's values in the order sent;
 *   - at the end every value published was taken exactly once (received or
 *     given back to the pool), and every claimed cell was taken or holds a
 *     hole (published by a send that found the channel closed after its
 *     claim, after the last receiver stopped): nothing is left;
 *   - no lost wake-up: a waiting consumer that sleeps is woken, or spin
 *     reports an invalid end state (everyone else finished, it sleeps on).
 *
 * The default is the algorithm with three fixes that native/objpool.hpp (and
 * lib/channel.ts) lacked when this model was written; the variants that
 * leave each out must fail (test/native/run.js runs them):
 *   -DNO_RECHECK         a send does not look at the closed flag again after
 *                        its claim (objpool.hpp send_checked, lib/channel.ts
 *                        send): a receiver that saw the channel closed and
 *                        drained stops, then the send publishes: lost
 *   -DHOLE_NO_SETTLE     a hole is published without the attention check
 *                        after it (lib/channel.ts): a waiter is never woken,
 *                        or a closed pool never gets a value back
 *   -DPOOL_CLOSE_NO_WAKE close_for_pool() sets the closed flags without
 *                        waking waiters (objpool.hpp): one that registered
 *                        after the pool's wake-up sleeps forever
 * and these must fail too:
 *   -DCAP=1              a one-cell channel (format() accepts it): "full at
 *                        position p" and "free at position p+1" are the same
 *                        seq value, so a send overwrites an unreceived value
 *   -DBATCH_UNCHECKED    a batch claim checks only its first cell
 *   -DFREE_BEFORE_READ   a consumer frees its cell before reading the value
 *   -DNO_WAITER_RECHECK  a waiter sleeps without looking again after it
 *                        registered
 */

#ifndef CAP
#define CAP 2
#endif
#ifndef NCONS
#ifdef POOL_CLOSE
#define NCONS 0
#else
#define NCONS 2
#endif
#endif
#ifndef PRODUCERS
#define PRODUCERS 2 /* how many of the two producers run */
#endif
#define NPROD 2
#define HOLE 255
#define NV 8 /* value v: producer v / 4, its (v % 4)-th value */

byte seq[CAP];
byte val[CAP];
byte enq;
byte deq;
bit closed;  /* attention word: kChanClosed */
bit pclosed; /* attention word: kChanPoolClosed */
byte waiters; /* attention word: the waiter count */
byte wake;    /* the pool's wake word (the futex word waiters sleep on) */

/* Ghosts, for the checks. */
bit inchan[NV]; /* published and not yet taken */
byte taken[NV]; /* times taken out: received or given back */
byte nsent;     /* values published */
byte ntaken;    /* values taken out */
byte pdone;     /* producers finished */

/* Each step below is one access to shared memory, with the local work
 * around it folded into the same atomic step (the same interleavings, far
 * fewer states). */

/* Claims up to WANT consecutive cells at position POS, each holding seq ==
 * position + LAG (0: free, for a producer; 1: full, for a consumer), with
 * one CAS of POS. k: how many (0: full or empty); at: the first position. */
inline claim(POS, LAG, WANT) {
  p = POS; /* relaxed: a guess */
  do
  :: atomic { /* the first cell's seq */
       d = seq[p % CAP] - (p + (LAG));
       if
       :: d < 0 -> k = 0; d = 0; p = 0; break /* full, or empty */
       :: d > 0 -> d = 1                      /* others moved on */
       :: d == 0 -> k = 1; d = 2
       fi
     }
     if
     :: d == 1 -> atomic { p = POS; d = 0 } /* a new guess */
     :: d == 2 ->
        do /* each further cell's seq, while the batch wants more */
#ifdef BATCH_UNCHECKED
        :: atomic { k < (WANT) && k < CAP -> k++ }
#else
        :: atomic { k < (WANT) && k < CAP && seq[(p + k) % CAP] == p + k + (LAG) -> k++ }
#endif
        :: else -> break
        od;
        atomic { /* the CAS */
          d = 0;
          if
          :: POS == p -> POS = p + k; at = p; p = 0; break
          :: else -> p = POS
          fi
        }
     fi
  od
}

/* Publishes claimed cell P with V: the value, then its seq (the release
 * store); j++ for the caller's loop. */
inline put(P, V) {
  val[(P) % CAP] = V;
  atomic {
    seq[(P) % CAP] = (P) + 1;
    if
    :: V != HOLE -> assert(!inchan[V]); inchan[V] = 1; nsent++
    :: else -> skip
    fi;
    j++
  }
}

/* What a taken value h must be, and (RECV: a consumer) the order check. */
inline got_value(RECV) {
  if
  :: h != HOLE ->
     assert(h < NV && inchan[h]); /* in the channel: not taken twice, not overwritten */
     inchan[h] = 0;
     taken[h]++;
     ntaken++;
     if
     :: RECV ->
        assert(h % 4 >= last[h / 4]); /* each producer's values in the order sent */
        last[h / 4] = h % 4 + 1;
        n++
     :: else -> skip
     fi
  :: else -> skip /* a hole */
  fi;
  h = 0
}

/* Empties claimed full cell P: reads the value, frees the cell for the
 * producer one lap later; j++ for the caller's loop. */
inline take(P, RECV) {
#ifdef FREE_BEFORE_READ
  seq[(P) % CAP] = (P) + CAP;
  atomic { h = val[(P) % CAP]; got_value(RECV); j++ }
#else
  atomic { h = val[(P) % CAP]; got_value(RECV) }
  atomic { seq[(P) % CAP] = (P) + CAP; j++ }
#endif
}

/* Channel::give_back(): takes everything out, back to the (closed) pool. */
inline give_back() {
  do
  :: claim(deq, 1, CAP);
     if
     :: k == 0 -> break
     :: else -> skip
     fi;
     do
     :: j < k -> take(at + j, 0)
     :: else -> atomic { j = 0; k = 0; at = 0 }; break
     od
  od
}

/* Channel::after_send(): after a publish, (fence) the attention word: give
 * back when the pool closed, wake when receivers wait. */
inline after_send() {
  atomic { a_pc = pclosed; a_w = waiters };
  if
  :: a_pc -> give_back()
  :: else -> skip
  fi;
  atomic {
    if
    :: a_w > 0 -> wake++
    :: else -> skip
    fi;
    a_pc = 0;
    a_w = 0
  }
}

proctype producer(byte me; bit batch) {
  byte i = 0; /* the next of this producer's two values to send */
  byte p, k, at, j, h, n, a_pc, a_w;
  bit holed;
  byte last[NPROD]; /* unused: got_value(0) names it */
  int d;
  do
  :: i >= 2 -> break
  :: else ->
     /* send_checked(): refused once closed (a relaxed hint) */
     if
     :: closed -> break
     :: else -> skip
     fi;
     claim(enq, 0, (batch && i == 0 -> 2 : 1));
     if
     :: k == 0 -> skip /* full: again */
     :: else ->
#ifndef NO_RECHECK
        /* The fix: closed since the hint? Then the claimed cells get holes
         * and the send reports closed, so that a receiver that saw the
         * channel closed and drained before this claim missed nothing.
         * (The pool closed too: the send goes on, after_send() gives it
         * back.) One load of the attention word. */
        if
        :: closed && !pclosed ->
           do
           :: j < k -> put(at + j, HOLE)
           :: else -> atomic { j = 0; k = 0; at = 0 }; break
           od;
           after_send();
           break
        :: else -> skip
        fi;
#endif
#ifdef HOLES
        if
        :: !batch && !holed ->
           /* lib/channel.ts: the ownership check lost a race after the
            * claim: a hole; the value is not sent (send throws). */
           put(at, HOLE);
           atomic { holed = 1; i++; j = 0; k = 0; at = 0 };
#ifndef HOLE_NO_SETTLE
           after_send();
#endif
           goto next
        :: true -> skip
        fi;
#endif
        do
        :: j < k -> put(at + j, me * 4 + i + j)
        :: else -> atomic { i = i + k; j = 0; k = 0; at = 0 }; break
        od;
        after_send();
next:   skip
     fi
  od;
  pdone++
}

/* receive_many(MAX): n values received. */
inline receive(MAX) {
  n = 0;
  do
  :: n < MAX ->
     claim(deq, 1, MAX - n);
     if
     :: k == 0 -> break
     :: else -> skip
     fi;
     do
     :: j < k -> take(at + j, 1)
     :: else -> atomic { j = 0; k = 0; at = 0 }; break
     od
  :: else -> break
  od
}

/* Channel::drained() into e: closed, and both positions agree (three loads). */
inline drained() {
  e = 0;
  if
  :: closed ->
     e = deq;
     atomic {
       if
       :: enq == e -> e = 1
       :: else -> e = 0
       fi
     }
  :: else -> skip
  fi
}

proctype consumer(byte max) {
  byte last[NPROD];
  byte p, k, at, j, h, n, e, seen;
  int d;
  do
  :: receive(max);
     if
     :: n > 0 -> n = 0
     :: else ->
        drained();
        if
        :: e -> break
        :: else -> skip
        fi;
#ifdef WAIT
        /* receiveAsync: the wake word, registered, looked at again, asleep
         * until the wake word moves. */
        seen = wake;
        waiters++;
#ifndef NO_WAITER_RECHECK
        receive(max);
        if
        :: n > 0 -> waiters--; n = 0; goto again
        :: else -> skip
        fi;
        drained();
        if
        :: e -> waiters--; break
        :: else -> skip
        fi;
#endif
        wake != seen;
        waiters--;
again:  seen = 0
#endif
     fi
  od
}

proctype closer() {
  byte p, k, at, j, h, n, a_w;
  byte last[NPROD]; /* unused: got_value(0) names it */
  int d;
#if defined(POOL_CLOSE)
#ifdef CLOSE_FIRST
  /* Channel::close() first: sends that see it publish holes, and the pool
   * may close under them (their give-back then takes what is behind) */
  atomic { a_w = waiters; closed = 1 };
  if
  :: a_w > 0 -> wake++
  :: else -> skip
  fi;
#endif
  wake++; /* Pool::close() wakes the pool's waiters first (the addon's close) */
  atomic { a_w = waiters; closed = 1; pclosed = 1 };
  give_back();
#ifndef POOL_CLOSE_NO_WAKE
  if
  :: a_w > 0 -> wake++
  :: else -> skip
  fi
#endif
#else
#ifndef CLOSE_RACE
  (pdone == PRODUCERS && ntaken == nsent); /* everything sent is out */
#endif
  /* Channel::close() */
  atomic { a_w = waiters; closed = 1 };
  if
  :: a_w > 0 -> wake++
  :: else -> skip
  fi
#endif
}

init {
  byte c;
  atomic {
    for (c : 0 .. CAP - 1) { seq[c] = c }
    run producer(0, 1);
#if PRODUCERS > 1
    run producer(1, 0);
#endif
#if NCONS > 0
    run consumer(2);
#endif
#if NCONS > 1
    run consumer(1);
#endif
    run closer()
  }
  (_nr_pr == 1); /* everyone finished (an invalid end state if some cannot) */
  /* Every claimed cell was taken, or holds a hole published by a send that
   * found the channel closed after its claim (the next receive skips it). */
  c = deq;
  do
  :: c != enq -> assert(seq[c % CAP] == c + 1 && val[c % CAP] == HOLE); c++
  :: else -> break
  od;
  for (c : 0 .. NV - 1) {
    assert(!inchan[c]); /* nothing left in the channel */
    assert(taken[c] <= 1)
  }
  assert(ntaken == nsent)
}
