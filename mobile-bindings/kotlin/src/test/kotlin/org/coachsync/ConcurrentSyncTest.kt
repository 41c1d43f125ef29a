package org.coachsync

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** `syncNow` from many coroutines at once: every call succeeds, nothing is lost. */
class ConcurrentSyncTest : DeviceTestBase() {
    @Test
    fun `concurrent syncNow calls from eight coroutines all succeed`() = runBlocking {
        val port = reservePort()
        // Offline at first: five observations wait for the server.
        val device = openDevice("phone", syncUrl(port))
        val docs = (1..5).map { device.create("observation", MINIMAL_OBSERVATION) }
        assertEquals(5u, device.pendingCount())
        startServer(port)

        val results = withTimeout(90_000) {
            (1..8).map { async(Dispatchers.IO) { device.syncNow(30_000uL) } }.awaitAll()
        }
        results.forEach { assertEquals(SyncResult(5u, emptyList()), it) }
        docs.forEach { assertEquals(SyncState.SAFE_ON_SERVER, device.status(it).state) }
        assertEquals(0u, device.pendingCount())

        // Again, each coroutine editing (its own entry in one shared document) and
        // syncing, so syncs and edits interleave.
        val doc = docs.first()
        val interleaved = withTimeout(90_000) {
            (1..8).map { i ->
                async(Dispatchers.IO) {
                    device.push(doc, "script", """{"id": "c$i", "at": ${1773162300000 + i}, "text": "entry $i"}""")
                    device.syncNow(30_000uL)
                }
            }.awaitAll()
        }
        // Each call returned every document, safe or (an edit of another coroutine
        // still on its way) not yet.
        interleaved.forEach { assertEquals(5, it.safe.toInt() + it.notSafe.size, it.toString()) }
        assertEquals(SyncResult(5u, emptyList()), device.syncNow(30_000uL))
        val json = device.get(doc)
        (1..8).forEach { assertTrue(json.contains("\"entry $it\""), json) }
    }
}
