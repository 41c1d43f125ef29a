package org.coachsync

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** `observeStatus` follows a document from LocalOnly to SafeOnServer; `cancel()` stops it. */
class StatusObserverTest : DeviceTestBase() {
    @Test
    fun `observeStatus sees LocalOnly then SafeOnServer and cancel stops it`() = runBlocking {
        val port = reservePort()
        val device = openDevice("phone", syncUrl(port))
        val doc = device.create("observation", MINIMAL_OBSERVATION)

        val watched = StatusRecorder()
        val subscription = track(device.observeStatus(watched))
        // A control that stays subscribed: it shows that what follows the cancel does
        // produce callbacks.
        val control = StatusRecorder()
        track(device.observeStatus(control))
        watched.statuses.await("LocalOnly") { it == doc to SyncState.LOCAL_ONLY }

        val server = startServer(port)
        assertEquals(SyncResult(1u, emptyList()), device.syncNow(30_000uL))
        watched.statuses.await("SafeOnServer") { it == doc to SyncState.SAFE_ON_SERVER }
        watched.connections.await("Connected") { it == ConnectionState.Connected }
        val states = watched.statuses.all().filter { it.first == doc }.map { it.second }
        assertEquals(SyncState.LOCAL_ONLY, states.first(), states.toString())
        assertEquals(SyncState.SAFE_ON_SERVER, states.last(), states.toString())

        subscription.cancel()
        drainCallbacks(device, doc)
        val statusesAtCancel = watched.statuses.all().size
        val connectionsAtCancel = watched.connections.all().size
        val controlStatuses = control.statuses.all().size
        val controlConnections = control.connections.all().size

        // A change of status (Pending, then SafeOnServer) and of connectivity.
        device.push(doc, "script", """{"id": "s1", "at": 1773162400000, "text": "after the cancel"}""")
        assertEquals(SyncResult(1u, emptyList()), device.syncNow(30_000uL))
        server.kill()
        control.connections.await("the connection's loss", 20_000, from = controlConnections) {
            it is ConnectionState.Waiting || it == ConnectionState.Connecting
        }
        drainCallbacks(device, doc)

        val controlSaw = control.statuses.all().drop(controlStatuses).map { it.second }
        assertTrue(SyncState.PENDING in controlSaw, controlSaw.toString())
        assertEquals(statusesAtCancel, watched.statuses.all().size, watched.statuses.all().toString())
        assertEquals(connectionsAtCancel, watched.connections.all().size, watched.connections.all().toString())
    }
}
