package org.coachsync

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * The scenario: an observation created offline, the server killed after a sync,
 * an edit while it is down, the server back on the same port, `syncNow` — and the edit
 * on the server, where a second device gets it and sees it through its observer.
 */
class OfflineEditTest : DeviceTestBase() {
    @Test
    fun `an edit made while the server is down is safe after it restarts and reaches a second device`() = runBlocking {
        val port = reservePort()
        val url = syncUrl(port)
        // No server yet: the device is offline.
        val phone = openDevice("phone", url)
        val doc = phone.create("observation", MINIMAL_OBSERVATION)
        assertEquals(SyncState.LOCAL_ONLY, phone.status(doc).state)

        val server = startServer(port)
        assertEquals(SyncResult(1u, emptyList()), phone.syncNow(30_000uL))
        assertEquals(SyncState.SAFE_ON_SERVER, phone.status(doc).state)

        // The server dies (SIGKILL); the coach goes on taking notes.
        server.kill()
        val entry = """{"id": "k-1", "at": 1773162400000, "text": "Kotlin: students explain their reasoning to a partner", "tags": ["lf-discourse"]}"""
        phone.push(doc, "script", entry)
        assertEquals(SyncState.PENDING, phone.status(doc).state)
        assertEquals(1u, phone.pendingCount())

        // Back on the same port, with the same data.
        val restarted = startServer(port)
        assertEquals(SyncResult(1u, emptyList()), phone.syncNow(30_000uL), restarted.log())
        assertEquals(SyncState.SAFE_ON_SERVER, phone.status(doc).state)
        assertEquals(0u, phone.pendingCount())

        // A second device gets the document from the server; its observer sees the edit.
        val laptop = openDevice("laptop", url)
        laptop.fetch(doc, 30_000uL)
        val observed = JsonRecorder()
        track(laptop.observe(doc, observed))
        observed.values.await("the edit made while the server was down") { it.contains("Kotlin: students explain") }

        // And what the phone does next, live.
        phone.set(doc, "nextStep", "\"Debrief on Thursday: partner talk protocol\"")
        assertEquals(SyncResult(1u, emptyList()), phone.syncNow(30_000uL))
        val merged = observed.values.await("the phone's next edit") { it.contains("partner talk protocol") }
        assertTrue(merged.contains("Kotlin: students explain"), merged)
        assertEquals(SyncResult(1u, emptyList()), laptop.syncNow(30_000uL))
        assertEquals(SyncState.SAFE_ON_SERVER, laptop.status(doc).state)
    }
}
