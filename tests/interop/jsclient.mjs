// A matrix-js-sdk client with Element's Rust crypto, driven line by line from pytest.
//
// Protocol: one JSON command per line on stdin ({"id", "cmd", ...args}); one answer per
// command on stdout, on a line starting with "@@CERCLE@@ " ({"id", "ok", "result"|"error"}).
// Everything else the SDK prints goes to stderr or is ignored by the driver.
//
// Crypto: initRustCrypto({useIndexedDB:false}) (in memory), and by default the strict
// "exclude insecure devices" mode (MSC4153): OnlySignedDevicesIsolationMode.

import readline from "node:readline";

// matrix-js-sdk 43 declares Node >= 22; Node 20 lacks Promise.withResolvers.
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new Promise((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

const sdk = await import("matrix-js-sdk");
const cryptoApi = await import("matrix-js-sdk/lib/crypto-api/index.js");
const { logger } = await import("matrix-js-sdk/lib/logger.js");

// SDK logs go to stderr (captured in a file by the driver), never on the protocol channel.
for (const level of ["trace", "debug", "info", "log", "warn", "error"]) {
    console[level] = (...args) => process.stderr.write(`[${level}] ${args.map(String).join(" ")}\n`);
}
logger.setLevel(process.env.JSCLIENT_LOG_LEVEL || "info");

let client = null;
// every to-device message received since start (decrypted where possible): waitToDevice
const toDevice = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// JSCLIENT_TRACE_SYNC=1: log each /sync's own-membership view per room (debugging only)
async function tracingFetch(input, init) {
    const response = await fetch(input, init);
    const url = String(input?.url ?? input);
    if (process.env.JSCLIENT_TRACE_SYNC && url.includes("/sync") && response.ok) {
        const body = await response.clone().json();
        for (const [section, rooms] of Object.entries(body.rooms ?? {})) {
            for (const [roomId, room] of Object.entries(rooms)) {
                const mine = (events) => (events ?? [])
                    .filter((e) => e.type === "m.room.member")
                    .map((e) => `${e.state_key}=${e.content?.membership}`);
                process.stderr.write(`[sync-trace] ${section} ${roomId} limited=${room.timeline?.limited} ` +
                    `timeline=${JSON.stringify(mine(room.timeline?.events))} ` +
                    `state=${JSON.stringify(mine(room.state?.events))} ` +
                    `state_after=${JSON.stringify(mine((room["org.matrix.msc4222.state_after"] ?? room.state_after)?.events))} ` +
                    `invite_state=${JSON.stringify(mine(room.invite_state?.events))} keys=${Object.keys(room)}\n`);
            }
        }
    }
    return response;
}

function reply(obj) {
    process.stdout.write(`@@CERCLE@@ ${JSON.stringify(obj)}\n`);
}

async function describeEvent(ev) {
    await client.decryptEventIfNeeded(ev);
    const crypto = client.getCrypto();
    let encryptionInfo = null;
    if (ev.isEncrypted() && !ev.isDecryptionFailure()) {
        const info = await crypto.getEncryptionInfoForEvent(ev);
        if (info) {
            encryptionInfo = {
                shieldColour: cryptoApi.EventShieldColour[info.shieldColour],
                shieldReason:
                    info.shieldReason === null ? null : cryptoApi.EventShieldReason[info.shieldReason],
            };
        }
    }
    return {
        eventId: ev.getId(),
        type: ev.getType(),
        sender: ev.getSender(),
        encrypted: ev.isEncrypted(),
        decryptionFailure: ev.isDecryptionFailure(),
        failureReason: ev.decryptionFailureReason ?? null,
        content: ev.isDecryptionFailure() ? null : ev.getContent(),
        senderDeviceId: ev.isEncrypted() ? (ev.getWireContent().device_id ?? null) : null,
        encryptionInfo,
    };
}

async function roomMessages(roomId) {
    const room = client.getRoom(roomId);
    if (!room) return [];
    const out = [];
    for (const ev of room.getLiveTimeline().getEvents()) {
        if (ev.getType() === "m.room.message" || ev.getType() === "m.room.encrypted") {
            out.push(await describeEvent(ev));
        }
    }
    return out;
}

async function until(predicate, timeoutMs, what) {
    const deadline = Date.now() + (timeoutMs ?? 30000);
    for (;;) {
        const value = await predicate();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
        await sleep(200);
    }
}

async function bootstrap() {
    await client.getCrypto().bootstrapCrossSigning({
        authUploadDeviceSigningKeys: async (makeRequest) => {
            await makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: client.cercleUserId },
                password: client.cerclePassword,
            });
        },
    });
}

const commands = {
    async bootstrapCrossSigning() {
        await bootstrap();
        return await client.getCrypto().getCrossSigningStatus();
    },

    async crossSignDevice({ deviceId }) {
        // sign another device of ours with our self-signing key (as verifying it would)
        const crypto = client.getCrypto();
        await until(async () => (await crypto.getUserDeviceInfo([client.getUserId()], true))
            .get(client.getUserId())?.has(deviceId), 20000, `device ${deviceId} known`);
        await crypto.crossSignDevice(deviceId);
        return {};
    },

    async whoami() {
        return { userId: client.getUserId(), deviceId: client.getDeviceId() };
    },

    async start({ baseUrl, userId, accessToken, deviceId, password, strict = true, crossSign = true, newDevice = false }) {
        if (newDevice) {
            // a second login of the same person: a new device
            const login = sdk.createClient({ baseUrl });
            const answer = await login.loginRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: userId },
                password,
            });
            accessToken = answer.access_token;
            deviceId = answer.device_id;
        }
        client = sdk.createClient({ baseUrl, userId, accessToken, deviceId, fetchFn: tracingFetch });
        client.cercleUserId = userId;
        client.cerclePassword = password;
        await client.initRustCrypto({ useIndexedDB: false });
        const crypto = client.getCrypto();
        // Like a fresh Element login: the user has a cross-signing identity (strict mode
        // refuses to encrypt without one). crossSign=false: Element before its bootstrap
        // (it runs a few seconds after the first login), or a client that never does it.
        if (crossSign) await bootstrap();
        crypto.setDeviceIsolationMode(
            strict
                ? new cryptoApi.OnlySignedDevicesIsolationMode()
                : new cryptoApi.AllDevicesIsolationMode(false),
        );
        client.on(sdk.ClientEvent.ReceivedToDeviceMessage, ({ message }) => {
            toDevice.push({ type: message.type, sender: message.sender, roomId: message.content?.room_id ?? null });
        });
        const prepared = new Promise((resolve) => {
            client.on(sdk.ClientEvent.Sync, (state) => {
                if (state === "PREPARED" || state === "SYNCING") resolve();
            });
        });
        await client.startClient({ initialSyncLimit: 50 });
        await prepared;
        const status = await crypto.getCrossSigningStatus();
        return { deviceId: client.getDeviceId(), strict, crossSigning: status };
    },

    async createRoom({ name, invite = [], historyVisibility = "shared" }) {
        const { room_id: roomId } = await client.createRoom({
            name,
            invite,
            preset: "private_chat",
            initial_state: [
                { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
                { type: "m.room.history_visibility", state_key: "", content: { history_visibility: historyVisibility } },
            ],
        });
        await until(() => client.getRoom(roomId), 20000, "room in sync");
        return { roomId };
    },

    async waitInvite({ roomId, timeoutMs }) {
        // without roomId: the first room we are invited to
        const room = await until(
            () => {
                const rooms = roomId ? [client.getRoom(roomId)] : client.getRooms();
                return rooms.find((r) => r && r.getMyMembership() === "invite") ?? null;
            },
            timeoutMs,
            `invite to ${roomId}`,
        );
        const me = room.currentState.getMember(client.getUserId());
        return { roomId: room.roomId, inviter: me?.events?.member?.getSender() ?? null };
    },

    async invite({ roomId, userId }) {
        // js-sdk 43 shares the room's history (MSC4268 bundle) on invite when the current
        // history visibility allows it, as Element does.
        await client.invite(roomId, userId);
        return { roomId };
    },

    async join({ roomId }) {
        await client.joinRoom(roomId);
        // the server has answered; the sync that shows it can lag behind a loaded machine's
        // Rust crypto work (importing a bundle, decrypting a backlog): 20 s failed twice in
        // full runs at load 2-8, never alone
        await until(() => client.getRoom(roomId)?.getMyMembership() === "join", 60000, "joined");
        return { roomId };
    },

    async waitJoined({ roomId, userId, timeoutMs }) {
        await until(
            () => client.getRoom(roomId)?.getMember(userId)?.membership === "join",
            timeoutMs,
            `${userId} joined`,
        );
        return { roomId };
    },

    async send({ roomId, body, msgtype = "m.text" }) {
        // js-sdk refuses to send before its crypto has seen the room's encryption state
        await until(() => client.getCrypto().isEncryptionEnabledInRoom(roomId), 20000, "room encryption known");
        const { event_id: eventId } = await client.sendMessage(roomId, { msgtype, body });
        return { eventId };
    },

    async waitMessage({ roomId, sender, contains, timeoutMs, decrypted = true }) {
        return await until(
            async () => {
                for (const m of await roomMessages(roomId)) {
                    if (sender && m.sender !== sender) continue;
                    if (decrypted && (m.decryptionFailure || m.type !== "m.room.message")) continue;
                    if (contains && !(m.content?.body ?? "").includes(contains)) continue;
                    return m;
                }
                return null;
            },
            timeoutMs,
            `message from ${sender} containing ${contains}`,
        );
    },

    async waitToDevice({ types, sender, roomId, timeoutMs }) {
        // a to-device message of one of these types (from sender, about roomId) has arrived
        return await until(
            () => toDevice.find((m) => types.includes(m.type)
                && (!sender || m.sender === sender) && (!roomId || m.roomId === roomId)) ?? null,
            timeoutMs,
            `to-device ${types} from ${sender} for ${roomId}`,
        );
    },

    async messages({ roomId }) {
        return await roomMessages(roomId);
    },

    async deviceStatus({ userId, deviceId }) {
        const crypto = client.getCrypto();
        await crypto.getUserDeviceInfo([userId], true);
        const status = await crypto.getDeviceVerificationStatus(userId, deviceId);
        const identity = await crypto.getUserVerificationStatus(userId);
        return {
            known: status !== null,
            signedByOwner: status?.signedByOwner ?? false,
            crossSigningVerified: status?.crossSigningVerified ?? false,
            localVerified: status?.localVerified ?? false,
            identityKnown: identity !== null,
            identityVerified: identity?.isVerified() ?? false,
        };
    },

    async stop() {
        client?.stopClient();
        return {};
    },
};

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
    if (!line.trim()) continue;
    let id = null;
    try {
        const msg = JSON.parse(line);
        id = msg.id;
        const handler = commands[msg.cmd];
        if (!handler) throw new Error(`unknown command ${msg.cmd}`);
        const result = await handler(msg);
        reply({ id, ok: true, result });
        if (msg.cmd === "stop") break;
    } catch (err) {
        reply({ id, ok: false, error: String(err?.stack ?? err) });
    }
}
process.exit(0);
