import threading

from models.counter import next_value, peek_value


def test_counter_starts_at_one_and_increments():
    assert peek_value("book:x") == 0
    assert [next_value("book:x") for _ in range(3)] == [1, 2, 3]
    assert peek_value("book:x") == 3


def test_concurrent_increments_give_distinct_consecutive_values():
    results: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            value = next_value("book:concurrent")
            with lock:
                results.append(value)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 401))
