"""`service.cluster.executor.Acks`: a command waiting for its trade's outcome is acknowledged once, by
whichever look at the trade's versions finds it done first.

Found by the cluster fault campaign (`make faults` part `cluster`): an executor looks at a trade's
waiting commands once per version it stores (task `ack-<id>`), once per version it hears on the bus and
once after each command it handles, all at once on one loop. Two looks at the same trade both await the
same command's predicate; the first removes and acknowledges it, the second's `waiting.remove(item)`
raised ValueError ("execution task failed: ack-<id>" in the executor's log, 1-2 times in 30 rounds), and
the rest of its pass was skipped: a command added to that trade meanwhile was left unacknowledged until a
later version of the trade came, or until the server delivered it again after the acknowledgement wait.
Each look now acknowledges only a command still waiting when its predicate answers.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace


from service.cluster.executor import Acks


class Delivered:
    def __init__(self) -> None:
        self.acks = 0

    async def ack(self) -> None:
        self.acks += 1


async def settled(trade) -> bool:
    await asyncio.sleep(0)  # as `_entry_settled` reads the store: another look at the trade runs meanwhile
    return True


async def test_two_looks_at_one_trade_at_once_acknowledge_its_command_once():
    acks, message = Acks(), Delivered()
    acks.wait(7, settled, message)
    trade = SimpleNamespace(id=7)
    await asyncio.gather(acks.check(trade), acks.check(trade))
    assert message.acks == 1 and len(acks) == 0


async def test_a_command_added_while_the_trade_is_being_looked_at_is_acknowledged_by_a_look_that_sees_it():
    acks, first, second = Acks(), Delivered(), Delivered()
    acks.wait(7, settled, first)
    trade = SimpleNamespace(id=7)

    async def second_look() -> None:  # runs while the first look awaits the first command's predicate
        acks.wait(7, settled, second)
        await acks.check(trade)

    await asyncio.gather(acks.check(trade), second_look(), return_exceptions=True)
    assert (first.acks, second.acks) == (1, 1), f"acknowledged {first.acks} and {second.acks} times"
