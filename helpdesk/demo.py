"""Fill an empty database with demo data that makes the helpdesk understandable at first sight.

Everything a visitor sees is filed through the real ticket services (routing, numbering,
history, SLA bookkeeping) with explicit `now` values in the past, replayed in time order, so
the histories read like real ones. The emails those services queue are demo noise: they are
deleted at the end of seeding (nobody at *.example should ever get one).
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, func, select

from helpdesk import clock
from helpdesk.extensions import db
from helpdesk.labels import ROLE_LABELS
from helpdesk.models import (
    Calendar, CalendarClosure, Category, OutboxMessage, RoutingRule, SlaPolicy, SlaPolicyVersion, Team, Tenant,
    Ticket, User,
)
from helpdesk.services import accounts, tickets

PASSWORD = "Demo-Passwort-2026"
BERLIN = ZoneInfo("Europe/Berlin")

TENANTS = [
    ("lup", "Landkreis Ludwigslust-Parchim"),
    ("schwerin", "Landeshauptstadt Schwerin"),
    ("hagenow", "Stadt Hagenow"),
    ("crivitz", "Amt Crivitz"),
]

# (slug, name, fallback?)
TEAMS = [
    ("service-desk", "Service Desk (1st Level)", True),
    ("arbeitsplatz", "Arbeitsplatz & Drucker", False),
    ("netzwerk", "Netzwerk & Infrastruktur", False),
    ("fachverfahren", "Fachverfahren", False),
    ("abrechnung", "Abrechnung", False),
]

# (email, name, role, tenant slug or None, team slugs, leads these teams)
MAIN_USERS = [
    ("admin@ksm.example", "Sabine Krüger", "admin", None, (), ()),
    ("servicedesk@ksm.example", "Jonas Becker", "agent", None, ("service-desk", "arbeitsplatz"), ()),
    ("teamleitung@ksm.example", "Petra Hoffmann", "team_lead", None, ("service-desk",), ("service-desk",)),
    ("servicemanager@ksm.example", "Thomas Wagner", "service_manager", None, (), ()),
    ("anna.schulz@lup.example", "Anna Schulz", "requester", "lup", (), ()),
    ("leitung@lup.example", "Dr. Birgit Lorenz", "tenant_manager", "lup", (), ()),
    ("max.meier@schwerin.example", "Max Meier", "requester", "schwerin", (), ()),
]
OTHER_USERS = [
    # KSM: team leads (members of their team) and agents, some in two teams.
    ("frank.schroeder@ksm.example", "Frank Schröder", "team_lead", None, ("arbeitsplatz",), ("arbeitsplatz",)),
    ("michael.braun@ksm.example", "Michael Braun", "team_lead", None, ("netzwerk",), ("netzwerk",)),
    ("claudia.richter@ksm.example", "Claudia Richter", "team_lead", None, ("fachverfahren",), ("fachverfahren",)),
    ("andrea.schmitt@ksm.example", "Andrea Schmitt", "team_lead", None, ("abrechnung",), ("abrechnung",)),
    ("lisa.hartmann@ksm.example", "Lisa Hartmann", "agent", None, ("service-desk",), ()),
    ("kevin.schulze@ksm.example", "Kevin Schulze", "agent", None, ("service-desk", "netzwerk"), ()),
    ("tim.lange@ksm.example", "Tim Lange", "agent", None, ("arbeitsplatz",), ()),
    ("julia.neumann@ksm.example", "Julia Neumann", "agent", None, ("arbeitsplatz", "netzwerk"), ()),
    ("stefan.koch@ksm.example", "Stefan Koch", "agent", None, ("netzwerk",), ()),
    ("marco.wolf@ksm.example", "Marco Wolf", "agent", None, ("fachverfahren",), ()),
    ("sandra.klein@ksm.example", "Sandra Klein", "agent", None, ("fachverfahren", "service-desk"), ()),
    ("nicole.zimmermann@ksm.example", "Nicole Zimmermann", "agent", None, ("abrechnung",), ()),
    # Landkreis Ludwigslust-Parchim
    ("klaus.peters@lup.example", "Klaus Peters", "requester", "lup", (), ()),
    ("monika.fischer@lup.example", "Monika Fischer", "requester", "lup", (), ()),
    ("jan.mueller@lup.example", "Jan Müller", "requester", "lup", (), ()),
    ("katharina.baumann@lup.example", "Katharina Baumann", "requester", "lup", (), ()),
    # Landeshauptstadt Schwerin
    ("leitung@schwerin.example", "Ralf Schubert", "tenant_manager", "schwerin", (), ()),
    ("sabine.krause@schwerin.example", "Sabine Krause", "requester", "schwerin", (), ()),
    ("heike.wendt@schwerin.example", "Heike Wendt", "requester", "schwerin", (), ()),
    ("tobias.jansen@schwerin.example", "Tobias Jansen", "requester", "schwerin", (), ()),
    # Stadt Hagenow
    ("leitung@hagenow.example", "Gabriele Sommer", "tenant_manager", "hagenow", (), ()),
    ("maria.busch@hagenow.example", "Maria Busch", "requester", "hagenow", (), ()),
    ("uwe.brandt@hagenow.example", "Uwe Brandt", "requester", "hagenow", (), ()),
    ("kerstin.voss@hagenow.example", "Kerstin Voß", "requester", "hagenow", (), ()),
    # Amt Crivitz
    ("leitung@crivitz.example", "Holger Krüger", "tenant_manager", "crivitz", (), ()),
    ("dirk.hahn@crivitz.example", "Dirk Hahn", "requester", "crivitz", (), ()),
    ("ines.lehmann@crivitz.example", "Ines Lehmann", "requester", "crivitz", (), ()),
    ("paul.friedrich@crivitz.example", "Paul Friedrich", "requester", "crivitz", (), ()),
]
USERS = MAIN_USERS + OTHER_USERS

# Top level: (name, description, routed to team, children as (name, description)).
CATALOG = [
    ("Fachverfahren", "Fachanwendungen der Verwaltung", "fachverfahren", [
        ("Einwohnerwesen", "Melderegister, Meldebescheinigungen, Datenaustausch"),
        ("Personenstandswesen", "Standesamt: Beurkundungen, Register"),
        ("Kfz-Zulassung", "Zulassungsstelle, Kasse, Plakettendruck, i-Kfz"),
        ("Finanzwesen (Doppik)", "Haushalt, Buchhaltung, Zahlläufe, Jahresabschluss"),
        ("Sozialwesen", "Leistungsberechnung, Bescheide"),
        ("Ausländerwesen", "Aufenthaltstitel, eAT-Lesegeräte"),
    ]),
    ("Hardware", "Geräte am Arbeitsplatz", "arbeitsplatz", [
        ("Arbeitsplatz-PC", "PC, Monitor, Tastatur, Maus"),
        ("Notebook", "Notebooks und Dockingstationen"),
        ("Drucker & Scanner", "Drucker, Multifunktionsgeräte, Scanner, Toner"),
        ("Telefon", "Tischtelefone, Headsets, Rufumleitungen"),
    ]),
    ("Zugang", "Benutzerkonten und Berechtigungen", None, [
        ("Passwort zurücksetzen", "Gesperrtes Konto, vergessenes oder abgelaufenes Passwort"),
        ("Neues Benutzerkonto", "Konten für neue Mitarbeitende, Praktikanten, Auszubildende"),
        ("Berechtigung", "Zugriff auf Ordner, Postfächer, Fachverfahren"),
    ]),
    ("Netzwerk", "Verbindungen und Ablage", "netzwerk", [
        ("VPN", "Zugang aus dem Homeoffice"),
        ("WLAN", "Drahtlosnetz in Dienstgebäuden und Sitzungssälen"),
        ("Internet", "Internetzugang, gesperrte Seiten"),
        ("Netzlaufwerk", "Gruppen- und Home-Laufwerke, Wiederherstellung"),
    ]),
    ("E-Mail & Kalender", "Postfächer, Verteiler, Kalenderfreigaben", None, []),
    ("Abrechnung", "Fragen zu Rechnungen und Leistungen der KSM", "abrechnung", [
        ("Rechnung", "Rückfragen und Korrekturen zu Rechnungen"),
        ("Leistungsnachweis", "Monatliche Leistungsnachweise"),
    ]),
    ("Sonstiges", "Alles, was sonst nirgends passt", None, []),
]

# Per catalog entry ("Parent > Child" or top level): (subject, description, impact, urgency).
CONTENT = {
    "Fachverfahren > Einwohnerwesen": [
        ("Kein Zugriff auf Einwohnerwesen nach Update",
         "Seit dem Update heute Morgen erscheint beim Start des Einwohnerwesens die Meldung „Anmeldung am "
         "Fachverfahren fehlgeschlagen“. Betroffen sind alle Arbeitsplätze im Bürgerbüro, wir können keine "
         "Meldebescheinigungen ausstellen. Im Wartebereich sitzen Bürgerinnen und Bürger.", 1, 1),
        ("Meldebescheinigung wird nicht gedruckt",
         "Beim Drucken einer erweiterten Meldebescheinigung passiert nichts, andere Dokumente drucken normal. "
         "Es erscheint keine Fehlermeldung.", 3, 2),
        ("Ummeldung aus Nachbargemeinde kommt nicht an",
         "Eine Rückmeldung zu einem Zuzug ist seit drei Tagen nicht bei uns eingegangen. Im Protokoll des "
         "Datenaustauschs steht „Nachricht abgewiesen“.", 2, 2),
    ],
    "Fachverfahren > Personenstandswesen": [
        ("Vorlage für Geburtsurkunde fehlt nach Update",
         "Im Standesamt fehlt seit dem letzten Update die Vorlage für die mehrsprachige Geburtsurkunde. "
         "Wir haben heute noch vier Termine, bei denen sie gebraucht wird.", 2, 1),
        ("Eheregister lässt sich nicht öffnen",
         "Beim Öffnen des Eheregisters friert die Anwendung ein und muss über den Task-Manager beendet werden.", 2, 2),
    ],
    "Fachverfahren > Kfz-Zulassung": [
        ("Kassenautomat in der Zulassungsstelle bucht nicht",
         "Der Kassenautomat nimmt Zahlungen an, die Buchung erscheint aber nicht im Zulassungsverfahren. "
         "Es warten etwa 15 Personen, wir kassieren vorerst bar.", 1, 1),
        ("Plakettendrucker druckt versetzt",
         "Die Siegelplaketten werden etwa 3 mm zu weit rechts gedruckt. Neu kalibriert haben wir schon.", 3, 2),
        ("Online-Zulassungsanträge werden nicht abgerufen",
         "Seit gestern Mittag sind keine neuen Online-Anträge mehr im Posteingang des Verfahrens angekommen.", 2, 2),
    ],
    "Fachverfahren > Finanzwesen (Doppik)": [
        ("Zahllauf bricht mit Fehler ab",
         "Der Zahllauf für diese Woche bricht bei 80 % mit der Meldung „Bankverbindung ungültig“ ab. "
         "Die Zahlungen müssen bis Freitag raus.", 2, 1),
        ("Buchungsperiode lässt sich nicht schließen",
         "Für den Jahresabschluss wollen wir die Periode 12 schließen, die Funktion ist aber ausgegraut.", 2, 2),
        ("Neue Kostenstelle für das Ordnungsamt anlegen",
         "Bitte legen Sie zum nächsten Monat die Kostenstelle 3210 „Verkehrsüberwachung“ an. "
         "Der Beschluss liegt vor.", 3, 3),
    ],
    "Fachverfahren > Sozialwesen": [
        ("Bescheiddruck im Sozialamt dauert sehr lange",
         "Das Erzeugen eines Bescheids dauert seit Montag mehrere Minuten statt weniger Sekunden.", 2, 2),
        ("Berechnung der Unterkunftskosten falsch",
         "Bei zwei Fällen werden die neuen Mietobergrenzen nicht berücksichtigt. Die Fallnummern sende ich "
         "gern auf Nachfrage.", 2, 2),
    ],
    "Fachverfahren > Ausländerwesen": [
        ("Lesegerät für Aufenthaltstitel wird nicht erkannt",
         "Das Kartenlesegerät am Platz 3 wird vom Verfahren nicht mehr erkannt. Ein anderes USB-Kabel haben "
         "wir schon probiert.", 3, 1),
        ("Schulung zur neuen Programmversion gewünscht",
         "Für das Team der Ausländerbehörde (6 Personen) wünschen wir eine kurze Einweisung in die neue Version.",
         3, 3),
    ],
    "Hardware > Arbeitsplatz-PC": [
        ("PC startet nicht mehr – nur schwarzer Bildschirm",
         "Mein Rechner zeigt nach dem Einschalten nur einen schwarzen Bildschirm. Die Lampe am Gehäuse leuchtet.",
         3, 1),
        ("Zweiter Monitor wird nicht erkannt",
         "Seit dem Umzug in Raum 204 bleibt der zweite Bildschirm schwarz. Kabel sind eingesteckt.", 3, 2),
        ("Rechner sehr langsam seit dem letzten Update",
         "Das Öffnen von Word und Outlook dauert seit gestern mehrere Minuten.", 3, 2),
    ],
    "Hardware > Notebook": [
        ("Notebook für den Außendienst benötigt",
         "Für die neue Kollegin in der Bauaufsicht benötigen wir ab dem 1. des nächsten Monats ein Notebook "
         "mit VPN-Zugang.", 3, 3),
        ("Akku des Notebooks hält nur noch 20 Minuten",
         "Das Notebook (Inventarnummer steht auf der Unterseite) geht nach kurzer Zeit ohne Netzteil aus.", 3, 3),
        ("Dockingstation erkennt das Notebook nicht",
         "Wenn ich das Notebook an die Dockingstation anschließe, bleiben Bildschirm, Tastatur und Netzwerk aus.",
         3, 2),
    ],
    "Hardware > Drucker & Scanner": [
        ("Drucker im 2. OG druckt nur leere Seiten",
         "Der Etagendrucker im 2. OG (neben der Teeküche) zieht Papier ein, die Seiten bleiben aber weiß. "
         "Betroffen sind alle Kolleginnen und Kollegen auf der Etage.", 2, 2),
        ("Scanner speichert nicht mehr im Netzlaufwerk",
         "Scans vom Multifunktionsgerät im Bürgerbüro landen nicht mehr im Ordner „Scans“. Das Gerät meldet "
         "„Ziel nicht erreichbar“.", 2, 2),
        ("Papierstau im Multifunktionsgerät lässt sich nicht beheben",
         "Das Gerät meldet dauerhaft Papierstau in Fach 2, obwohl kein Papier mehr darin steckt.", 3, 2),
        ("Toner für Drucker in Raum 114 bestellen",
         "Der Drucker in Raum 114 meldet „Toner schwarz fast leer“. Bitte um Lieferung einer neuen Kartusche.",
         3, 3),
    ],
    "Hardware > Telefon": [
        ("Telefon im Bürgerbüro ohne Freizeichen",
         "Das Telefon am Empfang des Bürgerbüros hat kein Freizeichen, im Display steht „Keine Verbindung“.",
         2, 1),
        ("Rufumleitung während des Urlaubs einrichten",
         "Bitte leiten Sie meine Durchwahl vom 10. bis 24. auf das Sekretariat um.", 3, 3),
        ("Headset knistert bei Gesprächen",
         "Bei Telefonaten knistert das Headset stark, die Gesprächspartner verstehen mich schlecht.", 3, 2),
    ],
    "Zugang > Passwort zurücksetzen": [
        ("Passwort abgelaufen – Anmeldung nicht möglich",
         "Nach dem Urlaub ist mein Passwort abgelaufen und ich komme nicht mehr an meinen Rechner.", 3, 1),
        ("Konto nach mehreren Fehleingaben gesperrt",
         "Ich habe mich mehrfach vertippt, jetzt ist mein Konto gesperrt. Bitte entsperren Sie es.", 3, 1),
    ],
    "Zugang > Neues Benutzerkonto": [
        ("Neue Mitarbeiterin zum Monatsersten – Konto anlegen",
         "Frau Lena Schmidt beginnt zum 1. im Sachgebiet Wohngeld. Sie benötigt ein Konto, ein Postfach und "
         "Zugriff auf das Gruppenlaufwerk des Sozialamts.", 3, 2),
        ("Praktikant benötigt befristeten Zugang",
         "Für unseren Praktikanten (sechs Wochen) bitten wir um einen Zugang mit Internet und Office.", 3, 3),
    ],
    "Zugang > Berechtigung": [
        ("Zugriff auf den Ordner „Bauamt“ benötigt",
         "Für die Vertretung von Herrn Keller benötige ich Lesezugriff auf das Gruppenlaufwerk des Bauamts. "
         "Die Zustimmung der Amtsleitung liegt vor.", 3, 2),
        ("Funktionspostfach Bürgerbüro: Zugriff für neue Kollegin",
         "Bitte geben Sie Frau Weber Zugriff auf das Funktionspostfach des Bürgerbüros.", 3, 2),
    ],
    "Netzwerk > VPN": [
        ("VPN-Verbindung bricht im Homeoffice ständig ab",
         "Die VPN-Verbindung trennt sich etwa alle zehn Minuten. Mein Internetanschluss zu Hause ist stabil.",
         3, 2),
        ("VPN-Zugang für Telearbeit beantragen",
         "Ich arbeite ab nächsten Monat zwei Tage pro Woche im Homeoffice und benötige einen VPN-Zugang. "
         "Die Vereinbarung ist unterschrieben.", 3, 3),
    ],
    "Netzwerk > WLAN": [
        ("WLAN im Sitzungssaal nicht verfügbar",
         "Im großen Sitzungssaal ist das Dienst-WLAN nicht zu sehen. Heute Abend tagt der Kreistag.", 2, 1),
        ("Gäste-WLAN für Bürgerversammlung",
         "Für die Bürgerversammlung am Donnerstag benötigen wir ein Gäste-WLAN für etwa 40 Personen.", 3, 3),
    ],
    "Netzwerk > Internet": [
        ("Internet an allen Arbeitsplätzen sehr langsam",
         "Seit etwa 9 Uhr laden Webseiten im ganzen Haus sehr langsam, das Landesportal gar nicht.", 1, 2),
        ("Webseite eines Bauträgers wird blockiert",
         "Die Webseite eines Bauträgers wird vom Filter als „unsicher“ gesperrt. Wir brauchen die Unterlagen "
         "für ein Genehmigungsverfahren.", 3, 2),
    ],
    "Netzwerk > Netzlaufwerk": [
        ("Netzlaufwerk H: nicht mehr verbunden",
         "Das Laufwerk H: ist nach dem Neustart verschwunden. Meine Dateien sind nicht mehr erreichbar.", 3, 1),
        ("Versehentlich gelöschte Datei wiederherstellen",
         "Ich habe die Datei „Haushaltsplan_Entwurf.xlsx“ im Ordner Kämmerei gelöscht. Bitte stellen Sie den "
         "Stand von gestern wieder her.", 3, 2),
    ],
    "E-Mail & Kalender": [
        ("Postfach voll – keine E-Mails mehr",
         "Outlook meldet, dass mein Postfach voll ist. Ich kann keine E-Mails mehr senden.", 3, 1),
        ("Funktionspostfach für das Standesamt einrichten",
         "Bitte richten Sie ein Funktionspostfach standesamt@… ein, auf das drei Personen Zugriff haben.", 3, 3),
        ("Kalender der Amtsleitung freigeben",
         "Das Sekretariat soll den Kalender der Amtsleitung bearbeiten dürfen.", 3, 3),
        ("E-Mails mit großen Anhängen kommen nicht an",
         "Bürgerinnen und Bürger schicken uns Bauunterlagen als PDF, diese kommen bei uns nicht an.", 2, 2),
    ],
    "Abrechnung > Rechnung": [
        ("Rückfrage zur Rechnung für das 1. Quartal",
         "In der Rechnung für das 1. Quartal sind 12 Arbeitsplätze mehr berechnet als im Vorquartal. "
         "Bitte erläutern Sie die Position.", 3, 3),
        ("Rechnungsanschrift ändern",
         "Bitte senden Sie Rechnungen künftig an die Kämmerei statt an das Hauptamt.", 3, 3),
    ],
    "Abrechnung > Leistungsnachweis": [
        ("Leistungsnachweis für den Vormonat fehlt",
         "Der monatliche Leistungsnachweis ist bei uns noch nicht eingegangen. Wir benötigen ihn für die "
         "Rechnungsprüfung.", 3, 2),
        ("Aufschlüsselung der Arbeitsplatzpauschale",
         "Für die Haushaltsplanung bitten wir um eine Aufschlüsselung der Arbeitsplatzpauschale nach Ämtern.",
         3, 3),
    ],
    "Sonstiges": [
        ("Umzug von fünf Arbeitsplätzen ins Nebengebäude",
         "Das Jugendamt zieht in drei Wochen mit fünf Arbeitsplätzen in das Nebengebäude. Bitte planen Sie "
         "Netzwerk, Telefone und Drucker mit ein.", 3, 3),
        ("Frage zur Datenschutzschulung",
         "Gibt es in diesem Jahr wieder eine Online-Schulung zum Datenschutz für neue Mitarbeitende?", 3, 3),
    ],
}

FIRST_REPLIES = [
    "vielen Dank für Ihre Meldung. Wir haben Ihr Anliegen übernommen und kümmern uns darum.",
    "danke für die ausführliche Beschreibung. Wir prüfen das gerade und melden uns im Laufe des Tages.",
    "wir haben uns per Fernwartung aufgeschaltet und können das Verhalten nachvollziehen. "
    "Wir arbeiten an einer Lösung.",
    "das Problem ist uns bekannt, es betrifft mehrere Standorte. Wir halten Sie hier auf dem Laufenden.",
]
QUESTIONS = [
    "können Sie uns bitte die genaue Fehlermeldung (gern als Bildschirmfoto) schicken und sagen, "
    "seit wann das Problem besteht?",
    "unter welcher Telefonnummer erreichen wir Sie heute am besten? Wir würden das gern kurz gemeinsam ansehen.",
    "bitte nennen Sie uns die Inventarnummer des Geräts (Aufkleber auf der Rück- oder Unterseite).",
    "liegt uns die Zustimmung Ihrer Amtsleitung vor? Ohne sie dürfen wir die Berechtigung nicht einrichten.",
]
ANSWERS = [
    "Die Meldung lautet „Zugriff verweigert (Code 5)“. Das Problem besteht seit gestern Nachmittag.",
    "Sie erreichen mich heute bis 15 Uhr unter der Durchwahl 214.",
    "Die Inventarnummer lautet 0815-2231.",
    "Die Zustimmung der Amtsleitung hängt an. Vielen Dank!",
    "Es betrifft inzwischen auch den Arbeitsplatz meines Kollegen.",
]
FOLLOW_UPS = [
    "Nachtrag: Ein Neustart hat leider nicht geholfen.",
    "Noch ein Hinweis: Bei meiner Kollegin im Nachbarbüro funktioniert es.",
    "Ergänzung: Das Problem tritt seit dem Stromausfall am Wochenende auf.",
]
NOTES = [
    "Betrifft vermutlich alle Arbeitsplätze am Standort – Zusammenhang mit dem Update von gestern prüfen.",
    "Herstellerhotline angefragt, Vorgangsnummer folgt.",
    "Per Fernwartung nachvollzogen. Treiber wird neu verteilt.",
    "Rückruf vereinbart, die Kollegin ist erst ab 10 Uhr erreichbar.",
    "Ersatzgerät liegt im Lager Schwerin bereit, Abholung mit der Tour am Donnerstag.",
    "Achtung: nicht eigenmächtig freigeben, erst Rücksprache mit der Teamleitung.",
]
SOLUTIONS = {
    "Fachverfahren": "das fehlerhafte Update wurde zurückgenommen, das Verfahren läuft wieder. Bitte melden Sie sich "
                     "einmal ab und wieder an. Sollte es erneut auftreten, eröffnen Sie das Ticket bitte wieder.",
    "Hardware": "unser Techniker war vor Ort und hat das Gerät instand gesetzt. Bitte prüfen Sie, ob alles wieder "
                "wie gewohnt funktioniert.",
    "Zugang": "wir haben Ihr Anliegen umgesetzt. Die Zugangsdaten erhalten Sie wie üblich persönlich von Ihrer "
              "IT-Ansprechperson; bitte ändern Sie das Startpasswort bei der ersten Anmeldung.",
    "Netzwerk": "die Störung ist behoben: Eine fehlerhafte Konfiguration am Standort-Switch wurde korrigiert. "
                "Bitte starten Sie Ihren Rechner einmal neu.",
    "E-Mail & Kalender": "die Einstellungen sind angepasst. Änderungen werden in Outlook nach einem Neustart sichtbar.",
    "Abrechnung": "anbei unsere Erläuterung: Die Abweichung ergibt sich aus den neu angeschlossenen Arbeitsplätzen "
                  "der Außenstelle. Die korrigierte Aufstellung finden Sie im Anhang Ihrer nächsten Rechnung.",
    "Sonstiges": "Ihr Anliegen ist erledigt. Bei Fragen melden Sie sich gern jederzeit.",
}
REOPEN_REASONS = [
    "Das Problem ist heute Morgen wieder aufgetreten.",
    "Leider funktioniert es an einem der Arbeitsplätze immer noch nicht.",
]
PRIORITY_REASONS = [
    "Bürgerbüro mit Publikumsverkehr betroffen",
    "Frist der Behörde läuft morgen ab",
]

# Share of catalog entries by top level and of tickets by tenant.
CATEGORY_WEIGHTS = {"Hardware": 30, "Zugang": 18, "Fachverfahren": 20, "Netzwerk": 13, "E-Mail & Kalender": 8,
                    "Abrechnung": 4, "Sonstiges": 7}
TENANT_WEIGHTS = {"lup": 40, "schwerin": 35, "hagenow": 15, "crivitz": 10}
# Final status of a ticket and how old (days) such tickets are.
STATUS_PLAN = [("new", 8, (0.05, 1.5)), ("open", 20, (0.2, 12)), ("pending", 10, (1, 15)),
               ("resolved", 10, (0.5, 6)), ("closed", 52, (11, 60))]

MV_HOURS = {"0": [["07:00", "16:00"]], "1": [["07:00", "16:00"]], "2": [["07:00", "16:00"]],
            "3": [["07:00", "16:00"]], "4": [["07:00", "13:00"]]}
# Business minutes per priority: first response, next update, resolution.
STANDARD_TARGETS = {
    "1": {"first_response": 30, "next_update": 60, "resolution": 240},
    "2": {"first_response": 60, "next_update": 120, "resolution": 480},
    "3": {"first_response": 240, "next_update": 480, "resolution": 1620},
    "4": {"first_response": 480, "next_update": None, "resolution": 4800},
}
BASIC_TARGETS = {
    "1": {"first_response": 60, "next_update": 120, "resolution": 480},
    "2": {"first_response": 120, "next_update": 240, "resolution": 960},
    "3": {"first_response": 480, "next_update": None, "resolution": 2700},
    "4": {"first_response": 960, "next_update": None, "resolution": 5400},
}


def _role_label(role: str, user: User) -> str:
    where = user.tenant.name if user.tenant else ", ".join(t.name for t in user.teams) or "KSM"
    return f"{ROLE_LABELS[role]} – {where}"


def logins() -> list[tuple[str, str]]:
    """Return (email, role label) of the demo accounts that exist, the main logins first."""
    emails = [spec[0] for spec in USERS]
    found = {u.email: u for u in db.session.scalars(select(User).where(User.email.in_(emails)))}
    return [(email, _role_label(found[email].role, found[email])) for email in emails if email in found]


def seed(ticket_count: int = 200, now: datetime | None = None) -> dict:
    """Create the demo tenants, teams, catalog, users and tickets unless tenant "lup" exists; commit.

    Returns {"password": the shared demo password, "users": [(email, role label), ...] with the main
    logins first, "created": False when the demo data was already there and nothing was changed}.
    """
    if db.session.scalar(select(Tenant).where(Tenant.slug == "lup")) is not None:
        return {"password": PASSWORD, "users": logins(), "created": False}
    now = (now or clock.utcnow()).astimezone(timezone.utc).replace(second=0, microsecond=0)
    start = now - timedelta(days=61)
    outbox_before = db.session.scalar(select(func.max(OutboxMessage.id))) or 0
    with _one_transaction():
        tenants = {slug: Tenant(slug=slug, name=name, created_at=start) for slug, name in TENANTS}
        teams = {slug: Team(slug=slug, name=name, email=f"team-{slug}@ksm.example", is_fallback=fallback)
                 for slug, name, fallback in TEAMS}
        db.session.add_all([*tenants.values(), *teams.values()])
        users = _create_users(tenants, teams, start)
        categories = _create_catalog(teams, tenants)
        _create_sla(tenants, start)
        db.session.flush()

        world = _World(random.Random(2026), now, tenants, teams, users, categories)
        _replay(world, [world.plan() for _ in range(ticket_count)], start)
        # SLA escalations long overdue would otherwise all fire on the worker's first run.
        _sla_catch_up(now)
        # The services queued emails for every demo event: demo noise, never to be sent to *.example.
        db.session.execute(delete(OutboxMessage).where(OutboxMessage.id > outbox_before))
    return {"password": PASSWORD, "users": logins(), "created": True}


@contextmanager
def _one_transaction():
    """Let the services' own commits only flush, and commit once at the end.

    The services commit after every event (right for requests); for ~1,000 demo events that would
    cost seconds of fsyncs and reloads, and a failure half-way would leave half a demo behind
    (and block a second run, which sees tenant "lup"). One transaction is fast and all-or-nothing.
    """
    session = db.session()
    session.commit = session.flush  # instance attribute shadows Session.commit until removed
    try:
        yield
    except BaseException:
        del session.commit
        session.rollback()
        raise
    del session.commit
    session.commit()


def _create_users(tenants: dict, teams: dict, start: datetime) -> dict[str, User]:
    # One argon2 hash for all: the demo password is shared, and hashing ~40 times would take seconds.
    password_hash = accounts.hash_password(PASSWORD)
    users = {}
    for email, name, role, tenant_slug, team_slugs, leads in USERS:
        user = User(email=email, name=name, role=role, tenant=tenants.get(tenant_slug), password_hash=password_hash,
                    teams=[teams[slug] for slug in team_slugs], locale="de", active=True, created_at=start)
        for slug in leads:
            teams[slug].lead = user
        users[email] = user
    db.session.add_all(users.values())
    return users


def _create_catalog(teams: dict, tenants: dict) -> dict[str, Category]:
    categories: dict[str, Category] = {}
    for index, (name, description, team_slug, children) in enumerate(CATALOG):
        parent = Category(name=name, description=description, position=index * 10)
        categories[name] = parent
        for child_index, (child_name, child_description) in enumerate(children):
            categories[f"{name} > {child_name}"] = Category(
                name=child_name, description=child_description, parent=parent, position=child_index * 10)
        if team_slug:
            db.session.add(RoutingRule(position=100 + index * 10, name=f"{name} → {teams[team_slug].name}",
                                       category=parent, team=teams[team_slug]))
    db.session.add_all(categories.values())
    # A tenant-specific rule before the general ones (Zugang, E-Mail and Sonstiges otherwise fall back
    # to the Service Desk): Schwerin runs its own mail system, looked after by the workplace team.
    db.session.add(RoutingRule(position=10, name="Schwerin: E-Mail & Kalender → Arbeitsplatz & Drucker",
                               tenant=tenants["schwerin"], category=categories["E-Mail & Kalender"],
                               team=teams["arbeitsplatz"]))
    return categories


def _create_sla(tenants: dict, start: datetime) -> None:
    from helpdesk.services.sla import DEFAULT_LEVELS

    calendar = Calendar(name="KSM-Servicezeiten (Mecklenburg-Vorpommern)", timezone="Europe/Berlin",
                        hours=MV_HOURS, holiday_region="DE-MV", updated_at=start)
    for year in (start.year, start.year + 1):
        calendar.closures.append(CalendarClosure(day=date(year, 12, 24), name="Heiligabend"))
        calendar.closures.append(CalendarClosure(day=date(year, 12, 31), name="Silvester"))
    db.session.add(calendar)
    db.session.flush()
    for slug, tenant in tenants.items():
        standard = slug in ("lup", "schwerin")
        policy = SlaPolicy(tenant_id=tenant.id, name="Servicevertrag Standard" if standard else "Servicevertrag Basis",
                           calendar=calendar, compliance_goal=95 if standard else 90)
        version = SlaPolicyVersion(policy=policy, version=1, created_at=start,
                                   targets=STANDARD_TARGETS if standard else BASIC_TARGETS, levels=DEFAULT_LEVELS)
        db.session.add_all([policy, version])
        db.session.flush()
        policy.current_version = version


def _sla_catch_up(now: datetime) -> None:
    from helpdesk.services import sla as sla_service

    # One sweep takes every due ticket. A failed check rolls back the session, here the whole demo
    # transaction, so the demo must stop rather than carry on without its data.
    if sla_service.sweep(now, budget_seconds=None)["failed"]:
        raise RuntimeError("demo: the SLA catch-up failed on a ticket, see the log")


@dataclass
class _Plan:
    """What happens to one demo ticket: who files it, about what, and its steps in time."""

    requester: User
    actor: User
    channel: str
    category: Category
    top: str
    content: tuple
    steps: list[tuple[datetime, str]] = field(default_factory=list)
    ticket: Ticket | None = None


class _World:
    """The demo's random but reproducible choices."""

    def __init__(self, rng: random.Random, now: datetime, tenants, teams, users, categories):
        self.rng, self.now, self.teams, self.categories = rng, now, teams, categories
        self.requesters = {slug: [u for u in users.values() if u.tenant is tenant] for slug, tenant in tenants.items()}
        self.phone_agents = [u for u in teams["service-desk"].members if u.role == "agent"]
        self.favourites = [users["anna.schulz@lup.example"], users["max.meier@schwerin.example"]]
        self.main_agent = users["servicedesk@ksm.example"]

    def pick(self, weights: dict):
        """Return one key of a {key: weight} mapping."""
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def plan(self) -> _Plan:
        """Invent one ticket: requester, catalog entry, text, final status and the steps there."""
        rng = self.rng
        if rng.random() < 0.22:
            requester = rng.choice(self.favourites)  # the main demo logins see a full list
        else:
            requester = rng.choice(self.requesters[self.pick(TENANT_WEIGHTS)])
        top = self.pick(CATEGORY_WEIGHTS)
        if top == "Abrechnung":
            managers = [u for u in self.requesters[requester.tenant.slug] if u.role == "tenant_manager"]
            requester = managers[0] if managers else requester
        key = rng.choice([k for k in CONTENT if k == top or k.startswith(f"{top} > ")])
        phone = rng.random() < 0.15
        plan = _Plan(requester=requester, actor=rng.choice(self.phone_agents) if phone else requester,
                     channel="phone" if phone else "web", category=self.categories[key], top=top,
                     content=rng.choice(CONTENT[key]))
        status, _, (low, high) = rng.choices(STATUS_PLAN, weights=[s[1] for s in STATUS_PLAN])[0]
        created = self.business_moment(self.now - timedelta(days=high), self.now - timedelta(days=low))
        self.schedule(plan, created, self.steps_to(status))
        return plan

    def steps_to(self, status: str) -> list[tuple[str, int, int]]:
        """Return the steps (action, min gap, max gap in minutes) that lead to a final status."""
        rng = self.rng
        if status == "new":
            return [("follow_up", 10, 120)] if rng.random() < 0.3 else []
        steps = [("assign", 5, 120)]
        if rng.random() < 0.08:
            steps.append(("priority", 5, 60))
        if rng.random() < 0.4:
            steps.append(("note", 10, 240))
        if status == "pending":
            return steps + [("ask", 15, 240)]
        if status == "open":
            steps.append(("ask", 15, 240) if rng.random() < 0.3 else ("reply", 15, 480))
            if steps[-1][0] == "ask" or rng.random() < 0.3:
                steps.append(("answer", 30, 1440))
            return steps
        if rng.random() < 0.3:
            steps += [("ask", 15, 240), ("answer", 60, 2880)]
        steps.append(("resolve", 60, 4320))
        if status == "resolved":
            return steps
        if rng.random() < 0.12:
            steps += [("reopen", 120, 2880), ("note", 10, 120), ("resolve", 60, 1440)]
        if rng.random() < 0.5:
            steps.append(("confirm", 60, 4320))  # otherwise the auto-close closes it after 7 days
        return steps

    def business_moment(self, low: datetime, high: datetime) -> datetime:
        """Return a random moment between low and high, inside Berlin office hours when possible."""
        moment = low
        for _ in range(30):
            moment = low + (high - low) * self.rng.random()
            local = moment.astimezone(BERLIN)
            if local.weekday() < 5 and 7 <= local.hour < (13 if local.weekday() == 4 else 16):
                break
        return moment.replace(second=0, microsecond=0)

    def next_office_moment(self, moment: datetime) -> datetime:
        """Move a moment outside office hours to the next morning's opening (plus a little)."""
        local = moment.astimezone(BERLIN)
        closing = 13 if local.weekday() == 4 else 16
        if local.weekday() < 5 and 7 <= local.hour < closing:
            return moment
        day = local.date() + timedelta(days=0 if local.hour < 7 else 1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        opening = datetime(day.year, day.month, day.day, 7, tzinfo=BERLIN) + timedelta(minutes=self.rng.randint(0, 90))
        return opening.astimezone(timezone.utc)

    def schedule(self, plan: _Plan, created: datetime, steps: list[tuple[str, int, int]]) -> None:
        """Give every step a moment after the previous one, in office hours, and always before now."""
        plan.steps = [(created, "create")]
        moment = created
        for index, (action, low, high) in enumerate(steps):
            left = len(steps) - index
            candidate = self.next_office_moment(moment + timedelta(minutes=self.rng.randint(low, high)))
            if candidate >= self.now - timedelta(minutes=2 * left):
                candidate = moment + (self.now - moment) / (left + 1)  # squeeze the rest in before now
            moment = candidate
            plan.steps.append((moment, action))

    def agent_for(self, ticket: Ticket) -> User:
        """Return a member of the ticket's team; the main demo agent when he is in it."""
        members = [u for u in ticket.team.members if u.is_staff]
        if self.main_agent in members and self.rng.random() < 0.5:
            return self.main_agent
        return self.rng.choice(members)


def _replay(world: _World, plans: list[_Plan], start: datetime) -> None:
    """Run every step of every plan, and the nightly auto-close, in the order they happened."""
    events = [(moment, i, j, plan) for i, plan in enumerate(plans) for j, (moment, _a) in enumerate(plan.steps)]
    day = start.replace(hour=1, minute=0)
    index = len(plans)
    while day < world.now:  # the worker's auto-close job, once a night
        events.append((day, index, 0, None))
        day += timedelta(days=1)
        index += 1
    days = current_app.config["AUTO_CLOSE_DAYS"]
    for moment, _i, j, plan in sorted(events, key=lambda e: e[:3]):
        if plan is None:
            tickets.auto_close_resolved(moment, days)
            continue
        _step(world, plan, plan.steps[j][1], moment)


def _step(world: _World, plan: _Plan, action: str, now: datetime) -> None:
    rng, ticket = world.rng, plan.ticket
    if action == "create":
        subject, description, impact, urgency = plan.content
        if plan.channel == "phone":
            description = f"Telefonische Meldung von {plan.requester.name}: {description}"
        plan.ticket = tickets.create_ticket(
            plan.actor, requester=plan.requester, subject=subject, description=description,
            category_id=plan.category.id, impact=impact, urgency=urgency, channel=plan.channel, now=now)
        return
    if ticket.status == "closed":
        return
    agent = ticket.assignee or world.agent_for(ticket)
    greeting = f"Guten Tag {plan.requester.name},\n\n"
    if action == "follow_up":
        tickets.reply(plan.requester, ticket, body=rng.choice(FOLLOW_UPS), now=now)
    elif action == "assign":
        tickets.assign(agent, ticket, agent, now)
    elif action == "priority":
        tickets.change_priority(agent, ticket, max(1, ticket.priority - 1), now, reason=rng.choice(PRIORITY_REASONS))
    elif action == "note":
        tickets.reply(agent, ticket, body=rng.choice(NOTES), internal=True, now=now)
    elif action == "reply":
        tickets.reply(agent, ticket, body=greeting + rng.choice(FIRST_REPLIES), now=now)
    elif action == "ask":
        tickets.reply(agent, ticket, body=greeting + rng.choice(QUESTIONS), new_status="pending", now=now)
    elif action == "answer":
        tickets.reply(plan.requester, ticket, body=rng.choice(ANSWERS), now=now)
    elif action == "resolve" and ticket.status != "resolved":
        tickets.reply(agent, ticket, body=greeting + SOLUTIONS[plan.top], new_status="resolved", now=now)
    elif action == "reopen" and ticket.status == "resolved":
        tickets.reopen(plan.requester, ticket, now, reason=rng.choice(REOPEN_REASONS))
    elif action == "confirm" and ticket.status == "resolved":
        tickets.confirm_resolution(plan.requester, ticket, now)
